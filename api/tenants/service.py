"""Tenant creation and lookup. Services flush; the caller commits."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import Plan, Tenant
from api.errors import InvalidRequest, NotFound
from api.inputs import MAX_NAME_LENGTH, check_text, clip


async def create_tenant(session: AsyncSession, name: str, plan_code: str = "free") -> Tenant:
    name = check_text(name.strip(), "name", MAX_NAME_LENGTH)
    if await session.get(Plan, plan_code) is None:
        raise InvalidRequest(f"plan: unknown plan {clip(plan_code)}")
    tenant = Tenant(id=uuid.uuid4(), name=name, plan_code=plan_code)
    session.add(tenant)
    await session.flush()
    return tenant


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


async def find_tenant_by_name(session: AsyncSession, name: str) -> Tenant | None:
    result = await session.execute(select(Tenant).where(Tenant.name == name).limit(1))
    return result.scalar_one_or_none()
