"""Creating and revoking keys. Services flush; the caller commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import ApiKey, EndUser
from api.errors import NotFound
from api.inputs import MAX_NAME_LENGTH, check_text, check_user_id
from api.keys.secrets import display_prefix, generate_key, hash_key
from api.tenants.service import get_tenant


@dataclass(frozen=True)
class CreatedKey:
    id: uuid.UUID
    key: str  # the only time the plaintext exists outside the caller's hands
    prefix: str


async def ensure_end_user(
    session: AsyncSession, tenant_id: uuid.UUID, external_id: str
) -> uuid.UUID:
    """The id of the tenant's end user `external_id`, created on first sight (race-safe)."""
    check_user_id(external_id, "user")
    stmt = (
        insert(EndUser)
        .values(id=uuid.uuid4(), tenant_id=tenant_id, external_id=external_id)
        .on_conflict_do_nothing(constraint="uq_end_users_tenant")
    )
    await session.execute(stmt)
    found = await session.execute(
        select(EndUser.id).where(EndUser.tenant_id == tenant_id, EndUser.external_id == external_id)
    )
    return found.scalar_one()


async def create_key(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    name: str | None = None,
    user: str | None = None,
) -> CreatedKey:
    if name is not None:
        check_text(name, "name", MAX_NAME_LENGTH)
    await get_tenant(session, tenant_id)
    end_user_id = await ensure_end_user(session, tenant_id, user) if user is not None else None
    key = generate_key()
    row = ApiKey(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        end_user_id=end_user_id,
        name=name,
        key_hash=hash_key(key),
        prefix=display_prefix(key),
    )
    session.add(row)
    await session.flush()
    return CreatedKey(id=row.id, key=key, prefix=row.prefix)


async def revoke_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"key {key_id} not found")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        await session.flush()
    return row
