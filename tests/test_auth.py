"""Revoked keys and suspended tenants are refused before any upstream call."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import anthropic
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.db.models import Tenant
from api.keys.service import revoke_key
from tests.support import (
    Gateway,
    TenantKey,
    ledger_rows,
    make_tenant_key,
    settled_rows,
    wait_until,
)

MESSAGES = [{"role": "user", "content": "hi"}]


def sdk(gateway: Gateway, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0)


async def test_revoked_key_is_refused_once_its_cache_entry_expires(
    gateway_factory: Callable[..., Gateway],
    tenant: TenantKey,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    """A key revoked in the database (another replica, the CLI) is refused by this process
    within the key cache TTL; until then the cached key still works."""
    gateway = gateway_factory(key_cache_ttl_s=Decimal("0.5"))
    client = sdk(gateway, tenant.key)
    await client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
    async with sessions() as session, session.begin():
        await revoke_key(session, tenant.key_id)

    async def refused() -> bool:
        try:
            await client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)
        except anthropic.AuthenticationError:
            return True
        return False

    await wait_until(refused, timeout_s=60, interval_s=0.1)
    rows = await settled_rows(engine, 1)
    assert rows and {r["status"] for r in rows} == {"ok"}  # every admitted call was metered
    with pytest.raises(anthropic.AuthenticationError):  # and it stays refused
        await client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES)


async def test_suspended_tenant_gets_403(
    gateway: Gateway,
    tenant: TenantKey,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(Tenant).where(Tenant.id == tenant.tenant_id).values(status="suspended")
        )
    with pytest.raises(anthropic.PermissionDeniedError):
        await sdk(gateway, tenant.key).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES
        )
    assert await ledger_rows(engine) == []


async def test_key_bound_to_a_user_fixes_the_user(
    gateway: Gateway, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    bound = await make_tenant_key(sessions, user="carol")
    await sdk(gateway, bound.key).messages.create(
        model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES, metadata={"user_id": "mallory"}
    )
    [row] = await settled_rows(engine, 1)
    async with engine.connect() as conn:
        from sqlalchemy import text

        external = (
            await conn.execute(
                text("SELECT external_id FROM end_users WHERE id = :id"), {"id": row["end_user_id"]}
            )
        ).scalar_one()
    assert external == "carol"
