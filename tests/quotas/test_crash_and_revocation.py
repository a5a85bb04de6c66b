"""A server killed mid-stream leaves nothing reserved for long, and a revoked key stops working
on every process within the key cache TTL."""

from __future__ import annotations

import signal
from decimal import Decimal

import anthropic
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.keys.service import revoke_key
from tests.support import ServeProcess, make_tenant_key, wait_until

BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 500,
    "stream": True,
    "messages": [{"role": "user", "content": "a long one, please"}],
}


async def test_sigkilled_server_reservation_is_reaped_and_row_abandoned(
    two_servers: list[ServeProcess],
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    victim, survivor = two_servers
    tenant = await make_tenant_key(sessions)
    knobs = {"x-sim-output-tokens": "500", "x-sim-token-delay-ms": "50"}
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(
            "POST",
            victim.url + "/v1/messages",
            json=BODY,
            headers={"x-api-key": tenant.key, **knobs},
        ) as response,
    ):
        assert response.status_code == 200
        async for chunk in response.aiter_raw():
            if b"content_block_delta" in chunk:
                break  # mid-stream
        victim.stop(signal.SIGKILL)

    async def reservation_released() -> bool:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT reserved_usd, in_flight FROM spend_counters "
                        "WHERE tenant_id = :t AND end_user_id IS NULL"
                    ),
                    {"t": tenant.tenant_id},
                )
            ).one()
        return Decimal(row[0]) == 0 and row[1] == 0

    assert not await reservation_released()  # held while the dead server's row is in flight
    await wait_until(reservation_released, timeout_s=90)  # the survivor's reaper acted
    async with engine.connect() as conn:
        status, error, reserved = (
            await conn.execute(
                text(
                    "SELECT status, error_type, reserved_usd FROM usage_ledger WHERE tenant_id = :t"
                ),
                {"t": tenant.tenant_id},
            )
        ).one()
    assert (status, error) == ("abandoned", "abandoned")
    assert Decimal(reserved) > 0  # what was reserved stays on the row for the record
    # The survivor still serves the tenant normally.
    client = anthropic.AsyncAnthropic(base_url=survivor.url, api_key=tenant.key, max_retries=0)
    reply = await client.messages.create(
        model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.usage.output_tokens == 5


async def test_revoked_key_stops_on_both_servers(
    two_servers: list[ServeProcess],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tenant = await make_tenant_key(sessions)
    small = {**BODY, "max_tokens": 3, "stream": False}
    async with httpx.AsyncClient(timeout=10) as http:

        async def statuses() -> list[int]:
            return [
                (
                    await http.post(
                        s.url + "/v1/messages", json=small, headers={"x-api-key": tenant.key}
                    )
                ).status_code
                for s in two_servers
            ]

        assert await statuses() == [200, 200]  # both processes have the key cached now
        async with sessions() as session, session.begin():
            await revoke_key(session, tenant.key_id)

        async def refused_everywhere() -> bool:  # TOLLGATE_KEY_CACHE_TTL_S=1 in these servers
            return await statuses() == [401, 401]

        await wait_until(refused_everywhere, timeout_s=60, interval_s=0.2)
