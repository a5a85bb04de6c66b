"""A busy database is not a down one: a request that cannot get a pooled connection (or an
answer) within TOLLGATE_DB_ADMISSION_WAIT_S is shed with 529 `overloaded_error` and
`retry-after`, from the key lookup too (it used to escape as a 500)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.support import Gateway, make_tenant_key, wait_until

BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "hi"}],
}


async def test_full_pool_at_the_key_lookup_is_529_with_retry_after(
    gateway_factory: Callable[..., Gateway],
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    gateway = gateway_factory(db_pool_size=1, db_admission_wait_s="0.5")
    first = await make_tenant_key(sessions, name="first")
    second = await make_tenant_key(sessions, name="second")
    async with (
        engine.connect() as locker,
        httpx.AsyncClient(base_url=gateway.url, timeout=60) as http,
    ):
        await locker.execute(text("BEGIN"))
        await locker.execute(text("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE"))
        # The first lookup takes the gateway's only connection and waits on the lock.
        held = asyncio.create_task(
            http.post("/v1/messages", json=BODY, headers={"x-api-key": first.key})
        )

        async def lookup_waits() -> bool:
            async with engine.connect() as conn:
                waiting = await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND query ILIKE '%api_keys%'"
                    )
                )
                return int(waiting.scalar_one()) == 1

        await wait_until(lookup_waits, timeout_s=30)
        shed = await http.post("/v1/messages", json=BODY, headers={"x-api-key": second.key})
        await locker.execute(text("ROLLBACK"))
        assert shed.status_code == 529, shed.text
        assert shed.json()["error"]["type"] == "overloaded_error"
        assert shed.headers["retry-after"] == "1"
        assert (await held).status_code == 200
        metrics = (await http.get("/metrics")).text
    assert 'tollgate_shed_requests_total{reason="busy"} 1.0' in metrics
