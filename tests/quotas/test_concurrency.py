"""Quotas that cannot be overshot: 200 concurrent streams from one tenant, spread over two
server processes sharing one database. Exactly as many are admitted as the limit allows."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.gate import UpstreamGate
from tests.quotas.conftest import module_database, module_gate, serve_envs, set_limits
from tests.support import ServeProcess, make_tenant_key, settled_rows, spawn_servers, wait_until

# One database, one gated upstream and one pair of servers for the whole module (starting two
# `tollgate serve` processes is most of each test's time); every test uses its own tenant.


database_url = pytest.fixture(scope="module", name="database_url")(module_database)
gate = pytest.fixture(scope="module", name="gate")(module_gate)


@pytest.fixture(scope="module")
def two_servers(
    database_url: str, gate: UpstreamGate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServeProcess]]:
    servers = spawn_servers(serve_envs(database_url, gate, tmp_path_factory.mktemp("serve")))
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


REQUESTS = 200
ADMITTED = 37  # the limit admits exactly this many, whatever the limit's kind
BODY = json.dumps(
    {
        "model": "claude-haiku-4-5",
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": "count to ten"}],
        "metadata": {"user_id": "u1"},
    }
).encode()
# Hard mode reserves (body bytes + 1024) input tokens at Haiku 4.5's $1/M and max_tokens at
# $5/M output: written out here, not taken from the code under test.
RESERVATION = (Decimal(len(BODY) + 1024) * 1 + Decimal(64) * 5) / 10**6


async def burst(
    servers: list[ServeProcess], key: str, gate: UpstreamGate | None = None
) -> list[httpx.Response]:
    """REQUESTS at once, round-robin over the servers. With a gate, every admitted request is
    held at the upstream (keeping its reservation and its slot) until every request has been
    decided: refused (answered) or admitted (waiting at the gate)."""
    limits = httpx.Limits(max_connections=REQUESTS + 10)
    async with httpx.AsyncClient(limits=limits, timeout=600) as http:

        async def one(i: int) -> httpx.Response:
            url = servers[i % len(servers)].url + "/v1/messages"
            response = await http.post(
                url, content=BODY, headers={"x-api-key": key, "content-type": "application/json"}
            )
            return response

        if gate is not None:
            gate.close()
        tasks = [asyncio.create_task(one(i)) for i in range(REQUESTS)]
        if gate is not None:

            async def all_decided() -> bool:
                return sum(t.done() for t in tasks) + gate.waiting == REQUESTS

            try:
                await wait_until(all_decided, timeout_s=120)
            finally:
                gate.open()
        return await asyncio.gather(*tasks)


async def ledger_total(engine: AsyncEngine, tenant_id: object) -> tuple[int, Decimal]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT count(*), COALESCE(sum(cost_usd), 0) FROM usage_ledger "
                    "WHERE tenant_id = :t"
                ),
                {"t": tenant_id},
            )
        ).one()
    return int(row[0]), Decimal(row[1])


async def counters(engine: AsyncEngine, tenant_id: object) -> list[tuple[Decimal, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT reserved_usd, in_flight FROM spend_counters WHERE tenant_id = :t"),
            {"t": tenant_id},
        )
        return [(Decimal(r[0]), int(r[1])) for r in rows]


@pytest.mark.parametrize("round_", range(3))
async def test_budget_admits_exactly_n_across_two_servers(
    two_servers: list[ServeProcess],
    gate: UpstreamGate,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    round_: int,
) -> None:
    tenant = await make_tenant_key(sessions, name=f"hot-{round_}")
    budget = RESERVATION * ADMITTED + RESERVATION / 2  # room for 37 reservations, not 38
    await set_limits(engine, tenant.tenant_id, budget=budget)
    responses = await burst(two_servers, tenant.key, gate)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: ADMITTED, 402: REQUESTS - ADMITTED}
    refused = next(r for r in responses if r.status_code == 402)
    assert refused.json()["error"]["type"] == "billing_error"
    rows = await settled_rows(engine, ADMITTED, timeout_s=120, tenant_id=tenant.tenant_id)
    assert len(rows) == ADMITTED and {r["status"] for r in rows} == {"ok"}
    count, total = await ledger_total(engine, tenant.tenant_id)
    assert count == ADMITTED and total <= budget
    assert await counters(engine, tenant.tenant_id) == [(Decimal(0), 0), (Decimal(0), 0)]


async def test_per_user_cap_admits_exactly_n(
    two_servers: list[ServeProcess],
    gate: UpstreamGate,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    tenant = await make_tenant_key(sessions)
    user_budget = RESERVATION * ADMITTED + RESERVATION / 2
    await set_limits(engine, tenant.tenant_id, budget=Decimal(1000), user_budget=user_budget)
    responses = await burst(two_servers, tenant.key, gate)
    assert Counter(r.status_code for r in responses) == {200: ADMITTED, 402: REQUESTS - ADMITTED}
    await settled_rows(engine, ADMITTED, timeout_s=120, tenant_id=tenant.tenant_id)
    _, total = await ledger_total(engine, tenant.tenant_id)
    assert total <= user_budget


async def db_minute(engine: AsyncEngine) -> datetime:
    """The minute on the database's clock (the one `tollgate_reserve` windows by)."""
    async with engine.connect() as conn:
        minute: datetime = (
            await conn.execute(text("SELECT date_trunc('minute', now())"))
        ).scalar_one()
    return minute


async def test_rpm_admits_exactly_n(
    two_servers: list[ServeProcess],
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    # The window slides at minute boundaries, so "exactly n" holds for a burst inside one
    # minute: a burst that spans a boundary (rare) is repeated with a fresh key.
    for attempt in range(3):
        tenant = await make_tenant_key(sessions, name=f"rpm-{attempt}")
        await set_limits(engine, tenant.tenant_id, budget=Decimal(1000), rpm=ADMITTED)
        before = await db_minute(engine)
        responses = await burst(two_servers, tenant.key)
        if await db_minute(engine) == before:
            break
    else:
        pytest.fail("three bursts in a row spanned a minute boundary")
    assert Counter(r.status_code for r in responses) == {200: ADMITTED, 429: REQUESTS - ADMITTED}
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert int(limited.headers["retry-after"]) >= 1
    ok = next(r for r in responses if r.status_code == 200)
    assert ok.headers["anthropic-ratelimit-requests-limit"] == str(ADMITTED)


async def test_concurrency_limit_admits_exactly_n(
    two_servers: list[ServeProcess],
    gate: UpstreamGate,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    tenant = await make_tenant_key(sessions)
    await set_limits(engine, tenant.tenant_id, budget=Decimal(1000), concurrency=ADMITTED)
    responses = await burst(two_servers, tenant.key, gate)
    assert Counter(r.status_code for r in responses) == {200: ADMITTED, 429: REQUESTS - ADMITTED}
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.headers["retry-after"] == "1"
    await settled_rows(engine, ADMITTED, timeout_s=120, tenant_id=tenant.tenant_id)
    assert await counters(engine, tenant.tenant_id) == [(Decimal(0), 0), (Decimal(0), 0)]
