"""`/admin/*` routes for a tenant's API keys: create (the key is shown once), list (never the
key), revoke. Every change is recorded in the audit log in its own transaction.

Revoking a key empties this process's key cache; other processes see it within
TOLLGATE_KEY_CACHE_TTL_S."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from api.admin.schemas import KeyCreate, KeyCreated, KeyList, KeyOut
from api.audit import record
from api.auth.admin import Admin, admin_body, no_content, require_admin
from api.http.jsonbody import body_schema
from api.keys.service import create_key, get_key, key_snapshot, list_keys, revoke_key
from api.state import State

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post("/tenants/{tenant_id}/keys", status_code=201, openapi_extra=body_schema(KeyCreate))
async def post_key(
    tenant_id: uuid.UUID,
    body: Annotated[KeyCreate, admin_body(KeyCreate)],
    state: State,
    admin: Admin,
) -> KeyCreated:
    async with state.sessions() as session, session.begin():
        created = await create_key(session, tenant_id, name=body.name, user=body.user)
        after = key_snapshot(await get_key(session, created.id))
        await record(session, admin, "key.create", "api_key", created.id, None, after)
    return KeyCreated(id=created.id, key=created.key, prefix=created.prefix)


@router.get("/tenants/{tenant_id}/keys")
async def get_keys(tenant_id: uuid.UUID, state: State) -> KeyList:
    async with state.sessions() as session, session.begin():
        keys = await list_keys(session, tenant_id)
    return KeyList(data=[KeyOut(**vars(key)) for key in keys])


@router.delete("/keys/{key_id}", status_code=204, response_class=Response)
async def delete_key(key_id: uuid.UUID, state: State, admin: Admin) -> Response:
    """204 when revoked now; 409 ("… was already revoked at …") when it was revoked before."""
    async with state.sessions() as session, session.begin():
        before = key_snapshot(await get_key(session, key_id))
        await revoke_key(session, key_id)
        after = key_snapshot(await get_key(session, key_id))
        await record(session, admin, "key.revoke", "api_key", key_id, before, after)
    state.key_cache.clear()
    return no_content(admin)
