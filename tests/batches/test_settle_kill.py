"""Batch settlement survives a crash: a real `tollgate serve` is SIGKILLed half-way through a
batch's results (the simulator's `x-sim-results-stall-after` holds the settler's own download
after 40 lines), a second gateway takes over, and every result is in the ledger exactly once,
at the right cost, with nothing left reserved."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.simulator import RunningSimulator, start_simulator_thread
from tests.batches.helpers import batch_requests
from tests.pg import asyncpg_dsn
from tests.support import ServeProcess, make_tenant_key, spawn_serve, wait_until

# "Hi there" = 5 input tokens; max_tokens 10 caps the simulator's reply at 10 output tokens.
HALF = Decimal(5 * 3 + 10 * 15) / 1_000_000 / 2  # $3 / $15 per million, batch discount 0.5
USERS = ["alice", "bob", "carol"]
STALL_AFTER = 40
ERRORED = {"k3", "k71"}  # one settled before the kill, one after


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    running = start_simulator_thread()
    yield running
    running.stop()


def _serve(database_url: str, sim: RunningSimulator, tmp_path: Path, n: int) -> ServeProcess:
    env = {
        "DATABASE_URL": asyncpg_dsn(database_url),
        "TOLLGATE_UPSTREAM": "simulated",
        "ANTHROPIC_BASE_URL": sim.url,
        "TOLLGATE_DATA_DIR": str(tmp_path / f"data{n}"),
        "TOLLGATE_BATCH_POLL_S": "0.2",
        # The stalled download must stay stalled until the kill: no read timeout, no retry.
        "TOLLGATE_UPSTREAM_TIMEOUT_S": "600",
        "TOLLGATE_UPSTREAM_MAX_RETRIES": "0",
    }
    return spawn_serve(env, tmp_path / f"serve{n}.log")


_COUNTERS = text(
    "SELECT c.*, u.external_id FROM spend_counters c LEFT JOIN end_users u ON u.id = c.end_user_id"
)


async def _scalar(engine: AsyncEngine, sql: str) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(text(sql))


async def _rows_at_least(engine: AsyncEngine, n: int) -> bool:
    count = await _scalar(engine, "SELECT count(*) FROM usage_ledger WHERE endpoint = 'batch'")
    return bool(count >= n)


async def test_killed_settler_mid_results_another_gateway_finishes_exactly_once(
    database_url: str,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    sim: RunningSimulator,
    tmp_path: Path,
) -> None:
    tenant = await make_tenant_key(sessions)
    first = _serve(database_url, sim, tmp_path, 1)
    try:
        client = anthropic.AsyncAnthropic(base_url=first.url, api_key=tenant.key, max_retries=0)
        # The knobs travel with the create request; the stall applies to the batch's first
        # results download, which is the settler's own (the test never downloads results).
        batch = await client.messages.batches.create(
            requests=batch_requests(100, USERS, "k"),  # type: ignore[arg-type]
            extra_headers={
                "x-sim-results-stall-after": str(STALL_AFTER),
                "x-sim-batch-errored": "^k(3|71)$",
            },
        )
        await client.close()
        await wait_until(lambda: _rows_at_least(engine, STALL_AFTER), 120)
        # Held half-way: exactly the lines the stalled download delivered are settled.
        assert await _scalar(engine, "SELECT count(*) FROM usage_ledger") == STALL_AFTER
        assert await _scalar(engine, "SELECT state FROM batches") == "submitted"
        first.stop(signal.SIGKILL)
    finally:
        first.stop(signal.SIGKILL)

    second = _serve(database_url, sim, tmp_path, 2)
    try:
        await wait_until(lambda: _rows_at_least(engine, 100), 120)

        async def closed() -> bool:
            return bool(await _scalar(engine, "SELECT state FROM batches") == "settled")

        await wait_until(closed, 120)
    finally:
        second.stop()

    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM usage_ledger"))).mappings().all()
        counters = (await conn.execute(_COUNTERS)).mappings().all()
        held = (await conn.execute(text("SELECT upstream_id, reserved_usd FROM batches"))).one()
    assert len(rows) == 100
    assert sorted(r["custom_id"] for r in rows) == sorted(f"k{i}" for i in range(100))
    assert {r["endpoint"] for r in rows} == {"batch"}
    for row in rows:
        expected = Decimal(0) if row["custom_id"] in ERRORED else HALF
        assert row["cost_usd"] == expected, row
        assert row["status"] == ("upstream_error" if row["custom_id"] in ERRORED else "ok")
    tenant_row = next(c for c in counters if c["end_user_id"] is None)
    assert tenant_row["spent_usd"] == HALF * 98
    assert tenant_row["reserved_usd"] == 0 and tenant_row["requests"] == 100
    per_user = {c["external_id"]: c for c in counters if c["end_user_id"] is not None}
    # k_i belongs to USERS[i % 3]; errored: k3 -> alice, k71 -> carol
    assert per_user["alice"]["spent_usd"] == HALF * (34 - 1)
    assert per_user["bob"]["spent_usd"] == HALF * 33
    assert per_user["carol"]["spent_usd"] == HALF * (33 - 1)
    assert all(c["reserved_usd"] == 0 for c in counters)
    assert held.upstream_id == batch.id and held.reserved_usd == 0
