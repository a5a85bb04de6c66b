"""`/admin/*` routes for tenants, end users and plans. Each one parses its input, runs one
service call and records it in the audit log, in one transaction (committed here, before the
response), and answers. The router carries the admin check (a viewer token gets 403 on writes).

Changing a tenant empties this process's key cache; other processes see the change within
TOLLGATE_KEY_CACHE_TTL_S."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.admin import service
from api.admin.schemas import (
    PlanCode,
    PlanOut,
    PlanPut,
    TenantCreate,
    TenantCreated,
    TenantOut,
    TenantPatch,
    UserLimitIn,
    UserLimitOut,
)
from api.audit import record
from api.auth.admin import Admin, admin_body, require_admin
from api.db.models import EndUser, Plan
from api.http.jsonbody import body_schema
from api.state import State
from api.tenants.service import create_tenant

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


async def _tenant_out(session: AsyncSession, tenant_id: uuid.UUID) -> TenantOut:
    tenant, plan = await service.tenant_with_plan(session, tenant_id)
    subs = await service.subscriptions_of(session, [tenant_id])
    return TenantOut.of(tenant, plan, subs.get(tenant_id))


@router.post("/tenants", status_code=201, openapi_extra=body_schema(TenantCreate))
async def post_tenant(
    body: Annotated[TenantCreate, admin_body(TenantCreate)], state: State, admin: Admin
) -> TenantCreated:
    async with state.sessions() as session, session.begin():
        tenant = await create_tenant(session, body.name, body.plan)
        out = await _tenant_out(session, tenant.id)
        await record(
            session, admin, "tenant.create", "tenant", tenant.id, None, out.model_dump(mode="json")
        )
    return TenantCreated(id=tenant.id, name=tenant.name, plan=tenant.plan_code)


@router.get("/tenants")
async def get_tenants(state: State) -> list[TenantOut]:
    async with state.sessions() as session, session.begin():
        rows = await service.list_tenants(session)
        subs = await service.subscriptions_of(session, [tenant.id for tenant, _ in rows])
    return [TenantOut.of(tenant, plan, subs.get(tenant.id)) for tenant, plan in rows]


@router.get("/tenants/{tenant_id}")
async def get_tenant(tenant_id: uuid.UUID, state: State) -> TenantOut:
    async with state.sessions() as session, session.begin():
        return await _tenant_out(session, tenant_id)


@router.patch("/tenants/{tenant_id}", openapi_extra=body_schema(TenantPatch))
async def patch_tenant(
    tenant_id: uuid.UUID,
    body: Annotated[TenantPatch, admin_body(TenantPatch)],
    state: State,
    admin: Admin,
) -> TenantOut:
    async with state.sessions() as session, session.begin():
        before = (await _tenant_out(session, tenant_id)).model_dump(mode="json")
        await service.update_tenant(session, tenant_id, body)
        out = await _tenant_out(session, tenant_id)
        await record(
            session,
            admin,
            "tenant.update",
            "tenant",
            tenant_id,
            before,
            out.model_dump(mode="json"),
        )
    state.key_cache.clear()  # status and plan are cached with each key
    return out


@router.put("/tenants/{tenant_id}/users/{user:path}/limit", openapi_extra=body_schema(UserLimitIn))
async def put_user_limit(
    tenant_id: uuid.UUID,
    user: str,
    body: Annotated[UserLimitIn, admin_body(UserLimitIn)],
    state: State,
    admin: Admin,
) -> UserLimitOut:
    async with state.sessions() as session, session.begin():
        before = _user_limit(await service.user_limit(session, tenant_id, user))
        row = await service.set_user_limit(session, tenant_id, user, body.monthly_budget_usd)
        out = UserLimitOut(
            tenant_id=tenant_id, user=row.external_id, monthly_budget_usd=row.monthly_budget_usd
        )
        await record(
            session,
            admin,
            "user.limit",
            "end_user",
            f"{tenant_id}/{row.external_id}",
            before,
            out.model_dump(mode="json"),
        )
    return out


def _user_limit(row: EndUser | None) -> dict[str, object] | None:
    if row is None:
        return None
    budget = row.monthly_budget_usd
    return {"monthly_budget_usd": None if budget is None else str(budget)}


@router.put("/plans/{code}", openapi_extra=body_schema(PlanPut))
async def put_plan(
    code: PlanCode,
    body: Annotated[PlanPut, admin_body(PlanPut)],
    state: State,
    response: Response,
    admin: Admin,
) -> PlanOut:
    """Set the given fields; a new code creates the plan (201), an existing one answers 200."""
    async with state.sessions() as session, session.begin():
        old = await session.get(Plan, code)
        before = PlanOut.of(old).model_dump(mode="json") if old is not None else None
        plan, created = await service.put_plan(session, code, body)
        out = PlanOut.of(plan)
        action = "plan.create" if created else "plan.update"
        await record(session, admin, action, "plan", code, before, out.model_dump(mode="json"))
    response.status_code = 201 if created else 200
    return out
