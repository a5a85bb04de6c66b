"""End users per tenant, created on first sight: `ensure_end_user` is the one place that
creates them (one statement, race-safe). Ids never change, so `UserDirectory` caches them per
process without expiry (bounded in size) for the request path."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from api.inputs import check_user_id

_CACHE_MAX = 200_000

_ENSURE = text(
    """
    WITH ins AS (
        INSERT INTO end_users (id, tenant_id, external_id) VALUES (:id, :tenant_id, :external_id)
        ON CONFLICT (tenant_id, external_id) DO NOTHING
        RETURNING id
    )
    SELECT id FROM ins
    UNION ALL
    SELECT id FROM end_users WHERE tenant_id = :tenant_id AND external_id = :external_id
    LIMIT 1
    """
)


_FIND = text("SELECT id FROM end_users WHERE tenant_id = :tenant_id AND external_id = :external_id")


async def ensure_end_user(
    conn: AsyncConnection | AsyncSession, tenant_id: uuid.UUID, external_id: str
) -> uuid.UUID:
    """The id of the tenant's end user `external_id`, created if new (in the caller's
    transaction when given a session)."""
    check_user_id(external_id, "user")
    params = {"id": uuid.uuid4(), "tenant_id": tenant_id, "external_id": external_id}
    found_id = (await conn.execute(_ENSURE, params)).scalar_one_or_none()
    if found_id is None:
        # A concurrent transaction inserted the same user after this statement's snapshot was
        # taken (the insert waited for it, then did nothing): a fresh statement sees it.
        found_id = (await conn.execute(_FIND, params)).scalar_one()
    user_id: uuid.UUID = found_id
    return user_id


class UserDirectory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._ids: dict[tuple[uuid.UUID, str], uuid.UUID] = {}

    async def resolve(self, tenant_id: uuid.UUID, external_id: str) -> uuid.UUID:
        key = (tenant_id, external_id)
        found = self._ids.get(key)
        if found is not None:
            return found
        async with self._engine.connect() as conn:
            user_id = await ensure_end_user(conn, tenant_id, external_id)
        if len(self._ids) >= _CACHE_MAX:
            self._ids.clear()
        self._ids[key] = user_id
        return user_id
