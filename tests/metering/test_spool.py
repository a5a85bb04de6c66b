"""Nothing is lost when Postgres blinks: streams that end while the database is down are
spooled durably and land in the ledger, once each, when it is back — even across a restart of
the gateway. A request that arrives while the database is down is refused (503) and nothing is
sent upstream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import anthropic
import pytest
from sqlalchemy import text

from api.db.engine import make_engine
from api.state import AppState
from tests.gate import UpstreamGate, gated_upstream
from tests.pg import StoppablePostgres
from tests.support import (
    Gateway,
    free_socket,
    gateway_settings,
    make_tenant_key,
    start_gateway,
    wait_until,
)

STREAMS = 8
MESSAGES = [{"role": "user", "content": "hello"}]


def writer_of(gateway: Gateway) -> AppState:
    state: AppState = gateway.server.config.app.state.tollgate  # type: ignore[attr-defined]
    return state


async def _count(url: str) -> tuple[int, int]:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'ok') AS ok "
                        "FROM usage_ledger"
                    )
                )
            ).one()
            return int(row.n), int(row.ok)
    finally:
        await engine.dispose()


async def test_postgres_stopped_mid_stream_every_row_arrives_once(
    stoppable_db: tuple[StoppablePostgres, str], simulator: str, tmp_path: Path
) -> None:
    with gated_upstream() as gate:
        await _stop_postgres_mid_stream(stoppable_db, gate, simulator, tmp_path)


async def _stop_postgres_mid_stream(
    stoppable_db: tuple[StoppablePostgres, str],
    gate: UpstreamGate,
    simulator: str,
    tmp_path: Path,
) -> None:
    pg, url = stoppable_db
    engine = make_engine(url, pool_size=2)
    from api.db.engine import make_sessionmaker

    key = await make_tenant_key(make_sessionmaker(engine))
    await engine.dispose()
    data_dir = tmp_path / "data"
    gateway = start_gateway(gateway_settings(data_dir, gate.url, upstream_timeout_s=600), url)
    client = anthropic.AsyncAnthropic(
        base_url=gateway.url,
        api_key=key.key,
        max_retries=0,
        default_headers={"x-sim-output-tokens": "60"},
    )

    async def one() -> int:
        async with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES
        ) as stream:
            return (await stream.get_final_message()).usage.output_tokens

    gate.close()  # admitted streams wait at the upstream until Postgres is down
    tasks = [asyncio.create_task(one()) for _ in range(STREAMS)]
    # Reaching the upstream means admitted: every in-flight row is written.
    await wait_until(lambda: _async(gate.waiting == STREAMS), timeout_s=60)
    await asyncio.to_thread(pg.stop)
    gate.open()
    assert await asyncio.gather(*tasks) == [60] * STREAMS  # the tenant saw nothing wrong

    # While the database is down, a new request fails closed.
    with pytest.raises(anthropic.APIStatusError) as refused:
        await client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES)
    assert refused.value.status_code == 503
    assert refused.value.response.headers["retry-after"] == "5"

    spool = writer_of(gateway).ledger.writer.spool
    await wait_until(lambda: _async(spool.pending() == STREAMS))
    lines = [json.loads(x) for p in spool.directory.iterdir() for x in p.read_text().splitlines()]
    assert {r["status"] for r in lines} == {"ok"}

    # Restart the gateway while the database is still down: the spool survives on disk.
    gateway.stop()
    await asyncio.to_thread(pg.start)
    second = start_gateway(gateway_settings(data_dir, simulator), url)
    try:

        async def all_landed() -> bool:
            return await _count(url) == (STREAMS, STREAMS)

        await wait_until(all_landed, timeout_s=60)
        assert writer_of(second).ledger.writer.spool.pending() == 0
        # Replaying the same records again changes nothing: settling is idempotent.
        from api.ledger.functions import Settlement, settle

        eng = make_engine(url, pool_size=1)
        async with eng.begin() as conn:
            applied = [await settle(conn, Settlement.from_json(r)) for r in lines]
        await eng.dispose()
        assert applied == [False] * STREAMS
        assert await _count(url) == (STREAMS, STREAMS)
    finally:
        second.stop()


async def _async(value: bool) -> bool:
    return value


async def test_database_down_before_a_request_fails_closed_and_calls_nothing_upstream(
    tmp_path: Path, pg_server: str, template_db: str
) -> None:
    hits = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hits
        hits += 1
        writer.close()

    upstream_sock = free_socket()
    upstream = await asyncio.start_server(count, sock=upstream_sock)
    dead_db = "postgresql+asyncpg://postgres@127.0.0.1:1/tollgate"
    settings = gateway_settings(
        tmp_path / "data", f"http://127.0.0.1:{upstream_sock.getsockname()[1]}"
    )
    gateway = start_gateway(settings, dead_db)
    try:
        client = anthropic.AsyncAnthropic(
            base_url=gateway.url, api_key="tg_live_" + "k" * 43, max_retries=0
        )
        with pytest.raises(anthropic.APIStatusError) as caught:
            await client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES)
        assert caught.value.status_code == 503  # unreachable: 503, never 529
        assert caught.value.response.headers["retry-after"] == "5"
        assert hits == 0
    finally:
        gateway.stop()
        upstream.close()
