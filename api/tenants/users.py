"""End users per tenant, created on first sight. Ids never change, so they are cached per
process without expiry (bounded in size)."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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


class UserDirectory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._ids: dict[tuple[uuid.UUID, str], uuid.UUID] = {}

    async def resolve(self, tenant_id: uuid.UUID, external_id: str) -> uuid.UUID:
        key = (tenant_id, external_id)
        found = self._ids.get(key)
        if found is not None:
            return found
        params = {"id": uuid.uuid4(), "tenant_id": tenant_id, "external_id": external_id}
        async with self._engine.connect() as conn:
            found_id = (await conn.execute(_ENSURE, params)).scalar_one_or_none()
            if found_id is None:
                # A concurrent request inserted the same user after our statement's snapshot:
                # a fresh statement sees it.
                found_id = (await conn.execute(_FIND, params)).scalar_one()
        user_id: uuid.UUID = found_id
        if len(self._ids) >= _CACHE_MAX:
            self._ids.clear()
        self._ids[key] = user_id
        return user_id
