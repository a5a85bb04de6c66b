"""Escrow leases on the request path, across two real `tollgate serve` processes sharing one
database: with roomy limits requests are admitted in memory against leases (their start rows
written in batches) and every request is in the ledger exactly once; near each kind of limit
the two processes together never admit more than the limit allows (budget, end-user cap,
concurrency, rpm). Thresholds are lowered (TOLLGATE_LEASE_MIN_*) so that leases are granted
for limits small enough to reach in a test."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.gate import UpstreamGate
from tests.quotas.conftest import module_database, module_gate, serve_envs, set_limits
from tests.quotas.test_concurrency import BODY, REQUESTS, RESERVATION, burst
from tests.support import ServeProcess, make_tenant_key, spawn_servers, wait_until

LEASE_ENV = {
    "TOLLGATE_LEASE_MIN_SLOTS": "8",
    "TOLLGATE_LEASE_MIN_RPM": "8",
    "TOLLGATE_LEASE_MIN_WORST_CASES": "4",
}


database_url = pytest.fixture(scope="module", name="database_url")(module_database)
gate = pytest.fixture(scope="module", name="gate")(module_gate)


@pytest.fixture(scope="module")
def two_servers(
    database_url: str, gate: UpstreamGate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[ServeProcess]]:
    envs = [
        ({**env, **LEASE_ENV}, log)
        for env, log in serve_envs(database_url, gate, tmp_path_factory.mktemp("serve"))
    ]
    servers = spawn_servers(envs)
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


async def post(server: ServeProcess, key: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=120) as http:
        return await http.post(
            server.url + "/v1/messages",
            content=BODY,
            headers={"x-api-key": key, "content-type": "application/json"},
        )


async def warm_up(
    servers: list[ServeProcess], key: str, engine: AsyncEngine, tenant: object
) -> int:
    """Requests, one at a time on each server, until each server has admitted one of them
    against a lease of the tenant (a landed row with its lease id): leases are in use from
    here, whatever the machine's speed. How many were sent."""
    sent = 0

    async def both_leased() -> bool:
        nonlocal sent
        for server in servers:
            assert (await post(server, key)).status_code == 200
            sent += 1
        async with engine.connect() as conn:
            owners = await conn.execute(
                text(
                    "SELECT count(DISTINCT owner) FROM usage_ledger "
                    "WHERE tenant_id = :t AND lease_id IS NOT NULL"
                ),
                {"t": tenant},
            )
            return int(owners.scalar_one()) == 2

    await wait_until(both_leased, timeout_s=120)
    return sent


async def ledger(engine: AsyncEngine, tenant: object) -> tuple[int, int, Decimal, int]:
    """(rows, rows still in flight, total cost, rows admitted against a lease)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT count(*), count(*) FILTER (WHERE status = 'in_flight'), "
                    "COALESCE(sum(cost_usd), 0), count(lease_id) "
                    "FROM usage_ledger WHERE tenant_id = :t"
                ),
                {"t": tenant},
            )
        ).one()
    return int(row[0]), int(row[1]), Decimal(row[2]), int(row[3])


async def landed(engine: AsyncEngine, tenant: object, count: int) -> tuple[int, Decimal, int]:
    """Once `count` rows are in the ledger and none is in flight: (rows, cost, leased rows)."""
    found: tuple[int, int, Decimal, int] = (0, 0, Decimal(0), 0)

    async def ready() -> bool:
        nonlocal found
        found = await ledger(engine, tenant)
        return found[0] >= count and found[1] == 0

    await wait_until(ready, timeout_s=120)
    return found[0], found[2], found[3]


async def requests_reserved(engine: AsyncEngine, tenant: object) -> tuple[Decimal, int, Decimal]:
    """The tenant counter's reserved_usd and in_flight less what leases hold, and its spend."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT c.reserved_usd - COALESCE((SELECT sum(amount_usd) FROM budget_leases b"
                    "  WHERE b.tenant_id = c.tenant_id), 0), "
                    "c.in_flight - COALESCE((SELECT sum(slots) FROM budget_leases b"
                    "  WHERE b.tenant_id = c.tenant_id), 0), c.spent_usd "
                    "FROM spend_counters c WHERE c.tenant_id = :t AND c.end_user_id IS NULL"
                ),
                {"t": tenant},
            )
        ).one()
    return Decimal(row[0]), int(row[1]), Decimal(row[2])


async def test_roomy_limits_admit_against_leases_and_every_row_lands_once(
    two_servers: list[ServeProcess],
    gate: UpstreamGate,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    tenant = await make_tenant_key(sessions)
    await set_limits(engine, tenant.tenant_id, budget=Decimal(1000))
    sent = await warm_up(two_servers, tenant.key, engine, tenant.tenant_id)
    responses = await burst(two_servers, tenant.key)
    assert Counter(r.status_code for r in responses) == {200: REQUESTS}
    rows, cost, leased = await landed(engine, tenant.tenant_id, sent + REQUESTS)
    assert rows == sent + REQUESTS  # each request exactly once (the id is the primary key)
    assert leased > 0  # admitted in memory (how many depends on refills landing mid-burst)
    reserved, in_flight, spent = await requests_reserved(engine, tenant.tenant_id)
    assert (reserved, in_flight, spent) == (Decimal(0), 0, cost)
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(two_servers[0].url + "/metrics")).text
    assert 'tollgate_lease_refills_total{result="granted"}' in metrics


@pytest.mark.parametrize("kind", ["budget", "user_budget", "concurrency", "rpm"])
async def test_near_the_limit_two_processes_with_leases_never_overshoot(
    two_servers: list[ServeProcess],
    gate: UpstreamGate,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    kind: str,
) -> None:
    """A limit that admits `LIMIT` requests in all: a warm-up until both processes hold
    leases, then a burst held at the upstream until every request is decided. Warm-up and
    burst together get at most `LIMIT` 200s; the ledger and the counters agree."""
    tenant = await make_tenant_key(sessions)
    limit = 120
    roomy = Decimal(1000)
    budget = RESERVATION * limit + RESERVATION / 2  # room for `limit` worst cases, not one more
    if kind == "budget":
        await set_limits(engine, tenant.tenant_id, budget=budget)
    elif kind == "user_budget":  # every request is from end user "u1"
        await set_limits(engine, tenant.tenant_id, budget=roomy, user_budget=budget)
    elif kind == "concurrency":
        await set_limits(engine, tenant.tenant_id, budget=roomy, concurrency=limit)
    else:
        await set_limits(engine, tenant.tenant_id, budget=roomy, rpm=limit)
    sent = await warm_up(two_servers, tenant.key, engine, tenant.tenant_id)
    _, warm_cost, _ = await landed(engine, tenant.tenant_id, sent)
    responses = await burst(two_servers, tenant.key, gate)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 402, 429}, statuses
    admitted = sent + statuses[200]
    # 0 overshoot. Money: the burst's requests were all held at once, each holding its worst
    # case (in a lease or reserved per request) next to what the warm-up spent.
    if kind in ("budget", "user_budget"):
        assert warm_cost + statuses[200] * RESERVATION <= budget, statuses
    elif kind == "concurrency":
        assert statuses[200] <= limit, statuses
    else:  # rpm: every request of the test falls in one or two minutes of the window
        assert admitted <= limit, statuses
    rows, cost, leased = await landed(engine, tenant.tenant_id, admitted)
    assert rows == admitted
    if kind in ("budget", "user_budget"):
        assert cost <= budget
    reserved, in_flight, spent = await requests_reserved(engine, tenant.tenant_id)
    assert (reserved, in_flight, spent) == (Decimal(0), 0, cost)
    assert leased > 0
