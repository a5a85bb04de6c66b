"""`/admin/*` routes. Each one parses its input, runs one service call in one transaction
(committed here, before the response), and answers. The router carries the admin check.

Revoking a key or changing a tenant empties this process's key cache; other processes see the
change within TOLLGATE_KEY_CACHE_TTL_S."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from api.admin import service
from api.admin.schemas import (
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
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
from api.auth.admin import admin_body, require_admin
from api.http.jsonbody import body_schema
from api.keys.service import create_key, list_keys, revoke_key
from api.state import State
from api.tenants.service import create_tenant

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/tenants", status_code=201, openapi_extra=body_schema(TenantCreate))
async def post_tenant(
    body: Annotated[TenantCreate, admin_body(TenantCreate)], state: State
) -> TenantCreated:
    async with state.sessions() as session, session.begin():
        tenant = await create_tenant(session, body.name, body.plan)
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
        tenant, plan = await service.tenant_with_plan(session, tenant_id)
        subs = await service.subscriptions_of(session, [tenant_id])
    return TenantOut.of(tenant, plan, subs.get(tenant_id))


@router.patch("/tenants/{tenant_id}", openapi_extra=body_schema(TenantPatch))
async def patch_tenant(
    tenant_id: uuid.UUID, body: Annotated[TenantPatch, admin_body(TenantPatch)], state: State
) -> TenantOut:
    async with state.sessions() as session, session.begin():
        tenant, plan = await service.update_tenant(session, tenant_id, body)
        subs = await service.subscriptions_of(session, [tenant_id])
    state.key_cache.clear()  # status and plan are cached with each key
    return TenantOut.of(tenant, plan, subs.get(tenant_id))


@router.post("/tenants/{tenant_id}/keys", status_code=201, openapi_extra=body_schema(KeyCreate))
async def post_key(
    tenant_id: uuid.UUID, body: Annotated[KeyCreate, admin_body(KeyCreate)], state: State
) -> KeyCreated:
    async with state.sessions() as session, session.begin():
        created = await create_key(session, tenant_id, name=body.name, user=body.user)
    return KeyCreated(id=created.id, key=created.key, prefix=created.prefix)


@router.get("/tenants/{tenant_id}/keys")
async def get_keys(tenant_id: uuid.UUID, state: State) -> KeyList:
    async with state.sessions() as session, session.begin():
        keys = await list_keys(session, tenant_id)
    return KeyList(data=[KeyOut(**vars(key)) for key in keys])


@router.delete("/keys/{key_id}", status_code=204, response_class=Response)
async def delete_key(key_id: uuid.UUID, state: State) -> Response:
    """204 when revoked now; 409 ("… was already revoked at …") when it was revoked before."""
    async with state.sessions() as session, session.begin():
        await revoke_key(session, key_id)
    state.key_cache.clear()
    return Response(status_code=204)


@router.put("/tenants/{tenant_id}/users/{user:path}/limit", openapi_extra=body_schema(UserLimitIn))
async def put_user_limit(
    tenant_id: uuid.UUID,
    user: str,
    body: Annotated[UserLimitIn, admin_body(UserLimitIn)],
    state: State,
) -> UserLimitOut:
    async with state.sessions() as session, session.begin():
        row = await service.set_user_limit(session, tenant_id, user, body.monthly_budget_usd)
    return UserLimitOut(
        tenant_id=tenant_id, user=row.external_id, monthly_budget_usd=row.monthly_budget_usd
    )


@router.put("/plans/{code}", openapi_extra=body_schema(PlanPut))
async def put_plan(
    code: PlanCode, body: Annotated[PlanPut, admin_body(PlanPut)], state: State, response: Response
) -> PlanOut:
    """Set the given fields; a new code creates the plan (201), an existing one answers 200."""
    async with state.sessions() as session, session.begin():
        plan, created = await service.put_plan(session, code, body)
    response.status_code = 201 if created else 200
    return PlanOut.of(plan)
