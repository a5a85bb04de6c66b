"""A reserve that Postgres commits after the gateway stopped waiting for it (the request was
refused as "busy", nothing reached the upstream) must not leak its reservation and concurrency
slot: the process that wrote the row sees that no open request owns it and voids it.

The delay is real: a trigger on the ledger insert sleeps and ignores the cancel the client
sends when its timeout fires, so the statement commits after the client gave up."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.quotas.conftest import set_limits
from tests.support import Gateway, TenantKey, wait_until

BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 20,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}

SLOW_INSERTS = (
    "CREATE TABLE test_slow_ledger (on_ boolean)",
    """
    CREATE FUNCTION test_slow_ledger_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM test_slow_ledger) THEN
            BEGIN
                PERFORM pg_sleep(12);
            EXCEPTION WHEN query_canceled THEN
                NULL;  -- the caller gave up; commit anyway, as a statement past its cancel does
            END;
        END IF;
        RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER test_slow_ledger BEFORE INSERT ON usage_ledger "
    "FOR EACH ROW EXECUTE FUNCTION test_slow_ledger_insert()",
)


async def _counters(engine: AsyncEngine, tenant: TenantKey) -> tuple[int, Decimal, int]:
    async with engine.connect() as conn:
        in_flight, reserved = (
            await conn.execute(
                text(
                    "SELECT in_flight, reserved_usd FROM spend_counters "
                    "WHERE tenant_id = :t AND end_user_id IS NULL"
                ),
                {"t": tenant.tenant_id},
            )
        ).one()
        rows = (
            await conn.execute(text("SELECT count(*) FROM usage_ledger WHERE status='in_flight'"))
        ).scalar_one()
    return int(in_flight), Decimal(reserved), int(rows)


async def test_reserve_committed_after_the_client_gave_up_is_released(
    gateway_factory: Callable[..., Gateway], tenant: TenantKey, engine: AsyncEngine
) -> None:
    # The wait covers taking (or opening) a pool connection and sending the reserve on a busy
    # machine, and is still far shorter than the trigger's sleep: the reserve commits after
    # the client gave up.
    gateway = gateway_factory(db_admission_wait_s="4")
    await set_limits(engine, tenant.tenant_id, concurrency=2)
    async with engine.begin() as conn:
        for statement in SLOW_INSERTS:
            await conn.execute(text(statement))
        await conn.execute(text("INSERT INTO test_slow_ledger VALUES (true)"))
    headers = {"x-api-key": tenant.key}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        for _ in range(2):  # as many as the tenant may run at once
            refused = await http.post("/v1/messages", json=BODY, headers=headers)
            assert refused.status_code == 529, refused.text
            assert refused.json()["error"]["type"] == "overloaded_error"
            assert int(refused.headers["retry-after"]) >= 1
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM test_slow_ledger"))

        async def reserves_committed() -> bool:  # the leak this test is about did happen
            async with engine.connect() as conn:
                counted = await conn.execute(
                    text("SELECT coalesce(sum(count), 0) FROM rate_windows WHERE api_key_id=:k"),
                    {"k": tenant.key_id},
                )
                return int(counted.scalar_one()) == 2

        await wait_until(reserves_committed, timeout_s=60)

        async def released() -> bool:
            return await _counters(engine, tenant) == (0, Decimal(0), 0)

        await wait_until(released, timeout_s=60)
        served = await http.post("/v1/messages", json=BODY, headers=headers)
        assert served.status_code == 200, served.text
        metrics = (await http.get("/metrics")).text
    assert 'tollgate_shed_requests_total{reason="busy"} 2.0' in metrics
    assert "tollgate_orphans_released_total 2.0" in metrics
    statuses: list[str] = []

    async def settled() -> bool:  # settlements land in batches, shortly after the response
        nonlocal statuses
        async with engine.connect() as conn:
            found = await conn.execute(text("SELECT status FROM usage_ledger"))
            statuses = list(found.scalars().all())
        return "in_flight" not in statuses

    await wait_until(settled, timeout_s=60)
    assert statuses == ["ok"]  # the refused requests left no row: they never ran
