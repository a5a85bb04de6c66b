"""A graceful stop (SIGTERM) of `tollgate serve` with streams in flight: streams that fit in
the grace period finish, the rest are cut at its end and billed for what was seen, every row is
settled before the heartbeat stops (none left to be reaped as `abandoned`), and the process
exits 0."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.pg import asyncpg_dsn
from tests.support import ServeProcess, ledger_rows, make_tenant_key, spawn_serve

STREAMS = 4
TOKENS = 100
BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 1000,
    "stream": True,
    "messages": [{"role": "user", "content": "a long one, please"}],
}


def _serve(database_url: str, simulator: str, tmp_path: Path, grace_s: str) -> ServeProcess:
    env = {
        "DATABASE_URL": asyncpg_dsn(database_url),
        "TOLLGATE_UPSTREAM": "simulated",
        "ANTHROPIC_BASE_URL": simulator,
        "TOLLGATE_DATA_DIR": str(tmp_path / "data"),
        "TOLLGATE_SHUTDOWN_GRACE_S": grace_s,
        "TOLLGATE_UPSTREAM_MAX_RETRIES": "0",
    }
    return spawn_serve(env, tmp_path / "serve.log")


async def _stream(url: str, key: str, token_delay_ms: int, started: asyncio.Event) -> int:
    """Read one stream until it ends or the server cuts it; how many deltas arrived."""
    headers = {
        "x-api-key": key,
        "x-sim-output-tokens": str(TOKENS),
        "x-sim-token-delay-ms": str(token_delay_ms),
    }
    deltas = 0
    async with httpx.AsyncClient(timeout=120) as http:
        try:
            async with http.stream("POST", url + "/v1/messages", json=BODY, headers=headers) as r:
                assert r.status_code == 200
                async for chunk in r.aiter_raw():
                    deltas += chunk.count(b"event: content_block_delta")
                    if deltas:
                        started.set()
        except httpx.HTTPError:
            pass  # cut at the end of the grace period
    return deltas


@pytest.mark.parametrize(
    ("grace_s", "token_delay_ms", "statuses"),
    [
        ("60", 40, {"ok"}),  # ~4 s streams, a long grace: they finish
        ("1", 100, {"client_disconnected"}),  # ~10 s streams, 1 s grace: cut and billed
    ],
)
async def test_sigterm_mid_stream_settles_every_row_and_exits_0(
    database_url: str,
    simulator: str,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    grace_s: str,
    token_delay_ms: int,
    statuses: set[str],
) -> None:
    server = _serve(database_url, simulator, tmp_path, grace_s)
    tenant = await make_tenant_key(sessions)
    events = [asyncio.Event() for _ in range(STREAMS)]
    readers = [
        asyncio.create_task(_stream(server.url, tenant.key, token_delay_ms, e)) for e in events
    ]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout=60)
    server.proc.send_signal(signal.SIGTERM)
    seen = await asyncio.wait_for(asyncio.gather(*readers), timeout=120)
    code = await asyncio.to_thread(server.proc.wait, 120)
    assert code == 0, server.log.read_text()[-2000:]

    rows = await ledger_rows(engine)  # the process is gone: whatever it left is final
    assert len(rows) == STREAMS
    assert {r["status"] for r in rows} == statuses
    for row in rows:
        assert row["output_tokens"] > 0 and row["input_tokens"] > 0 and row["cost_usd"] > 0
    if statuses == {"ok"}:
        assert seen == [TOKENS] * STREAMS
        assert all(r["output_tokens"] == TOKENS for r in rows)
    else:
        assert all(r["output_tokens"] < TOKENS for r in rows)
