"""Tenant creation and lookup. Services flush; the caller commits."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import Plan, Tenant
from api.errors import Conflict, NotFound
from api.inputs import MAX_NAME_LENGTH, check_text, clip


class TenantNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"name: a tenant named {clip(name)} already exists")


async def create_tenant(session: AsyncSession, name: str, plan_code: str = "free") -> Tenant:
    """A new tenant; names are unique (uq_tenants_name), so a taken one raises TenantNameTaken."""
    name = check_text(name.strip(), "name", MAX_NAME_LENGTH)
    if await session.get(Plan, plan_code) is None:
        raise NotFound(f"plan: unknown plan {clip(plan_code)}")
    inserted = await session.execute(
        insert(Tenant)
        .values(id=uuid.uuid4(), name=name, plan_code=plan_code)
        .on_conflict_do_nothing(constraint="uq_tenants_name")
        .returning(Tenant.id)
    )
    tenant_id = inserted.scalar_one_or_none()
    if tenant_id is None:
        raise TenantNameTaken(name)
    return await get_tenant(session, tenant_id)


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


async def find_tenant_by_name(session: AsyncSession, name: str) -> Tenant | None:
    result = await session.execute(select(Tenant).where(Tenant.name == name))
    return result.scalar_one_or_none()
