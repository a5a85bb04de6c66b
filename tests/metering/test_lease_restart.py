"""Postgres stops and starts again while a tenant's requests are admitted against escrow leases.

The tenant's limits are far above the lease thresholds (TOLLGATE_LEASE_MIN_SLOTS / _MIN_RPM /
_MIN_WORST_CASES), so the gateway holds a lease and admits in memory. The defined outcomes:

* Requests in flight when Postgres stops finish normally (their settlements wait in the journal
  and the batcher's queue).
* While Postgres is down, a new request is admitted from the lease the process holds (its key,
  known good a moment ago, still is: nothing can revoke it meanwhile), for as long as the lease
  is trusted (the last committed heartbeat plus
  `TOLLGATE_REAPER_STALE_S` minus a third of it: the reaper can never hand that lease to anyone
  else meanwhile).
* Once the lease is no longer trusted, admission needs Postgres: 503 "database unavailable"
  with `retry-after: 5`, and nothing is sent upstream. (A busy database is 529; a stopped one
  never is.)
* When Postgres is back, every request is in the ledger exactly once, the counters equal the
  ledger, and the leases go back: nothing stays reserved or leased."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import pytest
from sqlalchemy import text

from api.db.engine import make_engine, make_sessionmaker
from api.db.errors import DB_DOWN_MESSAGE
from api.keys.secrets import hash_key
from api.ledger.leasing import Leasing
from tests.gate import UpstreamGate, gated_upstream
from tests.pg import StoppablePostgres
from tests.support import Gateway, gateway_settings, make_tenant_key, start_gateway, wait_until

PERMITS_LEFT_S = 30  # of the key's minute, when the outage begins
IN_FLIGHT = 8  # admitted from the lease before Postgres stops, held at the upstream
WHILE_DOWN = 4  # admitted from the lease while Postgres is down
TOKENS = 40
MESSAGES = [{"role": "user", "content": "hello"}]


def leasing_of(gateway: Gateway) -> Leasing:
    leasing = gateway.state.ledger.leasing
    assert leasing is not None
    return leasing


async def _true(value: bool) -> bool:
    return value


async def _one(url: str, sql: str, **params: object) -> tuple[object, ...]:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return tuple((await conn.execute(text(sql), params)).one())
    finally:
        await engine.dispose()


async def test_postgres_restart_with_leases_held_admits_from_the_lease_then_503_and_lands_once(
    stoppable_db: tuple[StoppablePostgres, str], tmp_path: Path
) -> None:
    pg, url = stoppable_db
    engine = make_engine(url, pool_size=2)
    key = await make_tenant_key(make_sessionmaker(engine))
    async with engine.begin() as conn:  # roomy: far above every lease threshold
        await conn.execute(
            text(
                "UPDATE tenants SET monthly_budget_usd = 1000, rpm_limit = 100000, "
                "max_concurrent = 10000 WHERE id = :id"
            ),
            {"id": key.tenant_id},
        )
    await engine.dispose()

    with gated_upstream() as gate:
        settings = gateway_settings(
            tmp_path / "data",
            gate.url,
            upstream_timeout_s=600,
            # The key's cache entry expires during the outage (a known-good key then still
            # works while Postgres is unreachable), and the lease stays trusted for 20 s after
            # the last heartbeat: long enough on a busy machine for the requests sent then.
            key_cache_ttl_s=1,
            reaper_stale_s=30,
        )
        gateway = start_gateway(settings, url)
        try:
            await _outage(gateway, gate, pg, url, key.key, key.key_id, key.tenant_id)
        finally:
            gateway.stop()

    # Stopped gracefully: every lease went back, nothing is reserved, nothing in flight.
    leases, reserved, in_flight = await _one(
        url,
        "SELECT (SELECT count(*) FROM budget_leases), COALESCE(sum(reserved_usd), 0), "
        "COALESCE(sum(in_flight), 0) FROM spend_counters WHERE tenant_id = :t",
        t=key.tenant_id,
    )
    assert (leases, reserved, in_flight) == (0, 0, 0)


async def _outage(
    gateway: Gateway,
    gate: UpstreamGate,
    pg: StoppablePostgres,
    url: str,
    api_key: str,
    key_id: uuid.UUID,
    tenant_id: uuid.UUID,
) -> None:
    leasing = leasing_of(gateway)
    client = anthropic.AsyncAnthropic(
        base_url=gateway.url,
        api_key=api_key,
        max_retries=0,
        default_headers={"x-sim-output-tokens": str(TOKENS)},
    )

    async def one() -> int:
        async with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=100, messages=MESSAGES
        ) as stream:
            return (await stream.get_final_message()).usage.output_tokens

    # Warm up until requests are admitted from a lease (the first ones reserve per request and
    # show the limits are roomy; a refill then takes the lease in the background), and until
    # the key's rpm permits are good for a while yet: permits count in one minute, and if the
    # minute turned during the outage the requests below could not be admitted from the lease
    # (seen on a busy CI run). After a minute's turn the next refill brings new ones.
    warm = 0

    async def leased() -> bool:
        nonlocal warm
        await one()
        warm += 1
        permits = leasing.book.permits.get(key_id)
        return (
            leasing.hits >= 1
            and permits is not None
            and permits.expires - time.monotonic() > PERMITS_LEFT_S
        )

    await wait_until(leased, timeout_s=150)

    gate.close()
    hits = leasing.hits
    held = [asyncio.create_task(one()) for _ in range(IN_FLIGHT)]
    await wait_until(lambda: _true(gate.waiting == IN_FLIGHT), timeout_s=60)
    assert leasing.hits - hits == IN_FLIGHT, leasing.misses  # all admitted from the lease
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        metrics = (await http.get("/metrics")).text
    assert 'tollgate_lease_admissions_total{result="lease"}' in metrics

    await asyncio.to_thread(pg.stop)
    assert leasing.book.trusted  # the heartbeat before the stop is fresh enough

    # Postgres is down, the lease is trusted: admitted from it, no database needed — also
    # once the key's cache entry has expired (its lookup cannot reach Postgres).
    key_hash = hash_key(api_key)
    await wait_until(lambda: _true(gateway.state.key_cache.get(key_hash) is None), timeout_s=60)
    down = [asyncio.create_task(one()) for _ in range(WHILE_DOWN)]
    try:
        await wait_until(lambda: _true(gate.waiting == IN_FLIGHT + WHILE_DOWN), timeout_s=60)
    except AssertionError:
        raise AssertionError(
            f"not admitted from the lease while Postgres was down: misses {leasing.misses}, "
            f"trusted {leasing.book.trusted}"
        ) from None
    assert leasing.hits - hits == IN_FLIGHT + WHILE_DOWN

    # Once the lease is no longer trusted (no heartbeat could commit), admission needs
    # Postgres: 503 "database unavailable", nothing sent upstream.
    await wait_until(lambda: _true(not leasing.book.trusted), timeout_s=60)
    with pytest.raises(anthropic.APIStatusError) as refused:
        await client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES)
    assert refused.value.status_code == 503
    assert refused.value.response.headers["retry-after"] == "5"
    assert DB_DOWN_MESSAGE in refused.value.message
    assert gate.waiting == IN_FLIGHT + WHILE_DOWN

    # The held streams finish normally while Postgres is still down.
    gate.open()
    assert await asyncio.gather(*held, *down) == [TOKENS] * (IN_FLIGHT + WHILE_DOWN)

    await asyncio.to_thread(pg.start)
    served = warm + IN_FLIGHT + WHILE_DOWN

    async def landed() -> bool:
        try:
            rows, ok = await _one(
                url,
                "SELECT count(*), count(*) FILTER (WHERE status = 'ok') FROM usage_ledger "
                "WHERE tenant_id = :t",
                t=tenant_id,
            )
        except OSError:
            return False
        return rows == served and ok == served

    await wait_until(landed, timeout_s=90)

    # The retired lease goes back once its requests have landed (the process returns it; it
    # is alive, so the reaper never takes it): the counters then equal the ledger.
    async def returned() -> bool:
        (leases,) = await _one(
            url, "SELECT count(*) FROM budget_leases WHERE tenant_id = :t", t=tenant_id
        )
        return leases == 0

    await wait_until(returned, timeout_s=90)
    spent, reserved, in_flight, cost, rows, ids = await _one(
        url,
        "SELECT c.spent_usd, c.reserved_usd, c.in_flight, "
        "(SELECT sum(cost_usd) FROM usage_ledger WHERE tenant_id = :t), "
        "(SELECT count(*) FROM usage_ledger WHERE tenant_id = :t), "
        "(SELECT count(DISTINCT id) FROM usage_ledger WHERE tenant_id = :t) "
        "FROM spend_counters c WHERE c.tenant_id = :t AND c.end_user_id IS NULL",
        t=tenant_id,
    )
    assert (rows, ids) == (served, served)  # each request once; the refused one never
    assert reserved == 0 and in_flight == 0
    assert spent == cost
    assert isinstance(spent, Decimal) and spent <= Decimal(1000)
