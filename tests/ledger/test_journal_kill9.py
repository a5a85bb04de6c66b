"""kill -9 of a server process that admitted requests against a lease and whose ledger
batches never reached Postgres: everything that reached the upstream is in its journal (one
`os.write` per record, in the page cache), and a process started on the same data directory
replays it exactly once; the reaper then returns the dead process's lease, and the counters
agree with the ledger."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.pg import asyncpg_dsn
from tests.quotas.conftest import set_limits
from tests.quotas.test_concurrency import BODY
from tests.support import make_tenant_key, spawn_serve, wait_until

SENT = 40


def env(database_url: str, simulator: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": asyncpg_dsn(database_url),
        "TOLLGATE_UPSTREAM": "simulated",
        "ANTHROPIC_BASE_URL": simulator,
        "TOLLGATE_DATA_DIR": str(data_dir),
        "TOLLGATE_REAPER_STALE_S": "10",
        "TOLLGATE_UPSTREAM_MAX_RETRIES": "0",
        "TOLLGATE_LEASE_MIN_SLOTS": "8",
        "TOLLGATE_LEASE_MIN_RPM": "8",
        "TOLLGATE_LEASE_MIN_WORST_CASES": "4",
        **extra,
    }


async def scalar(engine: AsyncEngine, sql: str, tenant: object) -> object:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), {"t": tenant})).scalar_one()


async def test_kill9_with_journaled_requests_replays_each_exactly_once(
    database_url: str,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    simulator: str,
    tmp_path: Path,
) -> None:
    tenant = await make_tenant_key(sessions)
    await set_limits(engine, tenant.tenant_id, budget=Decimal(1000))
    data_dir = tmp_path / "data"
    # Batches every ten minutes: nothing this process journals reaches Postgres before the kill.
    first = spawn_serve(
        env(database_url, simulator, data_dir, TOLLGATE_LEDGER_FLUSH_MS="600000"),
        tmp_path / "first.log",
    )
    headers = {"x-api-key": tenant.key, "content-type": "application/json"}
    statuses: Counter[int] = Counter()
    try:
        async with httpx.AsyncClient(base_url=first.url, timeout=120) as http:

            async def leased() -> bool:
                statuses[
                    (await http.post("/v1/messages", content=BODY, headers=headers)).status_code
                ] += 1
                found = await scalar(
                    engine,
                    "SELECT count(*) FROM budget_leases WHERE tenant_id = :t",
                    tenant.tenant_id,
                )
                return found == 1

            await wait_until(leased, timeout_s=120)
            replies = await asyncio.gather(
                *(http.post("/v1/messages", content=BODY, headers=headers) for _ in range(SENT))
            )
            statuses.update(r.status_code for r in replies)
    finally:
        first.stop(signal.SIGKILL)
    assert set(statuses) == {200}
    sent = sum(statuses.values())
    landed = await scalar(
        engine,
        "SELECT count(*) FROM usage_ledger WHERE tenant_id = :t AND status <> 'in_flight'",
        tenant.tenant_id,
    )
    assert landed == 0  # every settlement was only in the journal

    second = spawn_serve(env(database_url, simulator, data_dir), tmp_path / "second.log")
    try:

        async def replayed() -> bool:
            done = await scalar(
                engine,
                "SELECT count(*) FILTER (WHERE status = 'ok') FROM usage_ledger "
                "WHERE tenant_id = :t",
                tenant.tenant_id,
            )
            return done == sent

        await wait_until(replayed, timeout_s=120)
        rows = await scalar(
            engine, "SELECT count(*) FROM usage_ledger WHERE tenant_id = :t", tenant.tenant_id
        )
        assert rows == sent  # exactly once each
        assert (
            await scalar(
                engine,
                "SELECT count(lease_id) FROM usage_ledger WHERE tenant_id = :t",
                tenant.tenant_id,
            )
        ) > 0  # some were admitted against the lease: their start rows came from the journal

        async def lease_reaped() -> bool:  # the dead process's heartbeat went stale
            return (
                await scalar(
                    engine,
                    "SELECT count(*) FROM budget_leases b JOIN usage_ledger l "
                    "ON l.lease_id = b.id WHERE b.tenant_id = :t",
                    tenant.tenant_id,
                )
            ) == 0

        await wait_until(lease_reaped, timeout_s=120)
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT c.spent_usd, c.reserved_usd - COALESCE((SELECT sum(amount_usd) "
                        "FROM budget_leases b WHERE b.tenant_id = c.tenant_id), 0), "
                        "c.in_flight - COALESCE((SELECT sum(slots) FROM budget_leases b "
                        "WHERE b.tenant_id = c.tenant_id), 0), "
                        "(SELECT sum(cost_usd) FROM usage_ledger l "
                        " WHERE l.tenant_id = c.tenant_id) "
                        "FROM spend_counters c WHERE c.tenant_id = :t AND c.end_user_id IS NULL"
                    ),
                    {"t": tenant.tenant_id},
                )
            ).one()
        spent, reserved, in_flight, cost = row
        assert (spent, reserved, in_flight) == (cost, 0, 0)
        journal = [p for p in (data_dir / "spool").iterdir() if p.suffix != ".journal"]
        assert journal == []  # the dead process's files were replayed and deleted
    finally:
        second.stop()
