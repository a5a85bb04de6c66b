"""Revoked keys and suspended tenants are refused before any upstream call."""

from __future__ import annotations

import anthropic
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.db.models import Tenant
from api.keys.service import revoke_key
from tests.support import Gateway, TenantKey, ledger_rows, make_tenant_key, settled_rows

MESSAGES = [{"role": "user", "content": "hi"}]


def sdk(gateway: Gateway, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0)


async def test_revoked_key_is_refused(
    gateway: Gateway,
    tenant: TenantKey,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    await sdk(gateway, tenant.key).messages.create(
        model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES
    )
    async with sessions() as session, session.begin():
        await revoke_key(session, tenant.key_id)
    with pytest.raises(anthropic.AuthenticationError):
        await sdk(gateway, tenant.key).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES
        )
    assert len(await settled_rows(engine, 1)) == 1


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
