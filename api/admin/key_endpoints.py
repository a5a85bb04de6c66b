"""`/admin/*` routes for a tenant's API keys: create (the key is shown once; optional
`expires_at`, `allowed_models`, `monthly_budget_usd`), list (never the key), change those
policies (`PATCH /admin/keys/{id}`), rotate (`POST /admin/keys/{id}/rotate`: a new key like the
old one, and the old one's revocation scheduled for `revoke_at`), revoke. Every change is
recorded in the audit log in its own transaction.

A change empties this process's key cache; other processes see it within
TOLLGATE_KEY_CACHE_TTL_S."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from api.admin.schemas import (
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
    KeyPatch,
    KeyRotate,
    KeyRotated,
)
from api.audit import record
from api.auth.admin import Admin, admin_body, no_content, require_admin
from api.http.jsonbody import body_schema
from api.keys.policies import POLICY_FIELDS, rotate_key, update_policies
from api.keys.service import Policies, create_key, get_key, key_snapshot, list_keys, revoke_key
from api.state import State

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/tenants/{tenant_id}/keys", status_code=201, openapi_extra=body_schema(KeyCreate))
async def post_key(
    tenant_id: uuid.UUID,
    body: Annotated[KeyCreate, admin_body(KeyCreate)],
    state: State,
    admin: Admin,
) -> KeyCreated:
    policies = Policies(body.expires_at, body.allowed_models, body.monthly_budget_usd)
    async with state.sessions() as session, session.begin():
        created = await create_key(
            session, tenant_id, name=body.name, user=body.user, policies=policies
        )
        after = key_snapshot(await get_key(session, created.id))
        await record(session, admin, "key.create", "api_key", created.id, None, after)
    return KeyCreated(id=created.id, key=created.key, prefix=created.prefix)


@router.get("/tenants/{tenant_id}/keys")
async def get_keys(tenant_id: uuid.UUID, state: State) -> KeyList:
    async with state.sessions() as session, session.begin():
        keys = await list_keys(session, tenant_id)
    return KeyList(data=[KeyOut(**vars(key)) for key in keys])


@router.patch("/keys/{key_id}", openapi_extra=body_schema(KeyPatch))
async def patch_key(
    key_id: uuid.UUID,
    body: Annotated[KeyPatch, admin_body(KeyPatch)],
    state: State,
    admin: Admin,
) -> KeyOut:
    """Set the policies given (null removes one). 404 unknown key, 409 revoked key."""
    given = {f: getattr(body, f) for f in POLICY_FIELDS if f in body.model_fields_set}
    async with state.sessions() as session, session.begin():
        before = key_snapshot(await get_key(session, key_id))
        await update_policies(session, key_id, given)
        key = await get_key(session, key_id)
        await record(session, admin, "key.update", "api_key", key_id, before, key_snapshot(key))
    state.key_cache.clear()
    return KeyOut(**vars(key))


@router.post("/keys/{key_id}/rotate", status_code=201, openapi_extra=body_schema(KeyRotate))
async def post_rotate(
    key_id: uuid.UUID,
    body: Annotated[KeyRotate, admin_body(KeyRotate)],
    state: State,
    admin: Admin,
) -> KeyRotated:
    """A new key (shown once) with the old one's tenant, end user, name and policies; the old
    key keeps working until `revoke_at` (default: in 24 hours)."""
    async with state.sessions() as session, session.begin():
        before = key_snapshot(await get_key(session, key_id))
        created, revoke_at = await rotate_key(session, key_id, body.revoke_at)
        after = key_snapshot(await get_key(session, key_id))
        new = key_snapshot(await get_key(session, created.id))
        await record(session, admin, "key.rotate", "api_key", key_id, before, after)
        await record(session, admin, "key.create", "api_key", created.id, None, new)
    state.key_cache.clear()
    return KeyRotated(
        id=created.id,
        key=created.key,
        prefix=created.prefix,
        old_key_id=key_id,
        revoke_at=revoke_at,
    )


@router.delete("/keys/{key_id}", status_code=204, response_class=Response)
async def delete_key(key_id: uuid.UUID, state: State, admin: Admin) -> Response:
    """204 when revoked now (a scheduled revocation is brought forward); 409 ("… was already
    revoked at …") when it was revoked before."""
    async with state.sessions() as session, session.begin():
        before = key_snapshot(await get_key(session, key_id))
        await revoke_key(session, key_id)
        after = key_snapshot(await get_key(session, key_id))
        await record(session, admin, "key.revoke", "api_key", key_id, before, after)
    state.key_cache.clear()
    return no_content(admin)
