"""Creating, listing and revoking keys. Services flush; the caller commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import ApiKey, EndUser, UsageLedger
from api.errors import Conflict, NotFound
from api.inputs import MAX_NAME_LENGTH, check_text
from api.keys.secrets import display_prefix, generate_key, hash_key
from api.tenants.service import get_tenant
from api.tenants.users import ensure_end_user


@dataclass(frozen=True)
class CreatedKey:
    id: uuid.UUID
    key: str  # the only time the plaintext exists outside the caller's hands
    prefix: str


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


@dataclass(frozen=True)
class KeyListing:
    """What a key list shows: never the key or its hash."""

    id: uuid.UUID
    prefix: str
    name: str | None
    user: str | None  # the bound end user's id, if any
    created_at: datetime
    last_used_at: datetime | None  # start of the key's latest request in the ledger
    revoked_at: datetime | None


async def _listings(session: AsyncSession, *where: ColumnElement[bool]) -> list[KeyListing]:
    last_used = (
        select(func.max(UsageLedger.started_at))  # ix_usage_ledger_key_started: one index probe
        .where(UsageLedger.api_key_id == ApiKey.id)
        .scalar_subquery()
    )
    stmt = (
        select(
            ApiKey.id,
            ApiKey.prefix,
            ApiKey.name,
            EndUser.external_id,
            ApiKey.created_at,
            last_used,
            ApiKey.revoked_at,
        )
        .outerjoin(EndUser, EndUser.id == ApiKey.end_user_id)
        .where(*where)
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return [KeyListing(*row) for row in await session.execute(stmt)]


async def list_keys(session: AsyncSession, tenant_id: uuid.UUID) -> list[KeyListing]:
    """The tenant's keys, oldest first (NotFound for an unknown tenant)."""
    await get_tenant(session, tenant_id)
    return await _listings(session, ApiKey.tenant_id == tenant_id)


def key_snapshot(key: KeyListing) -> dict[str, Any]:
    """The key as the audit log keeps it (JSON-ready; never the key)."""
    out: dict[str, Any] = {}
    for name, value in vars(key).items():
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID | Decimal):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


async def get_key(session: AsyncSession, key_id: uuid.UUID) -> KeyListing:
    """One key as a list shows it (NotFound for an unknown key)."""
    found = await _listings(session, ApiKey.id == key_id)
    if not found:
        raise NotFound(f"key {key_id} not found")
    return found[0]


class KeyAlreadyRevoked(Conflict):
    def __init__(self, key_id: uuid.UUID, revoked_at: datetime) -> None:
        when = revoked_at.astimezone(UTC).isoformat(timespec="seconds")
        super().__init__(f"key {key_id} was already revoked at {when}")
        self.revoked_at = revoked_at


async def revoke_key(session: AsyncSession, key_id: uuid.UUID) -> datetime:
    """Revoke the key and return when; a key revoked before raises KeyAlreadyRevoked (even
    when two revocations race, exactly one succeeds)."""
    revoked = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(ApiKey.revoked_at)
    )
    revoked_at = revoked.scalar_one_or_none()
    if revoked_at is not None:
        return revoked_at
    earlier = await session.execute(select(ApiKey.revoked_at).where(ApiKey.id == key_id))
    row = earlier.one_or_none()
    if row is None:
        raise NotFound(f"key {key_id} not found")
    assert row.revoked_at is not None  # the update above skipped it for no other reason
    raise KeyAlreadyRevoked(key_id, row.revoked_at)
