"""Creating, listing and revoking keys. Services flush; the caller commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import ApiKey, EndUser
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


@dataclass(frozen=True)
class Policies:
    """A key's own limits (None: none of the kind)."""

    expires_at: datetime | None = None
    allowed_models: list[str] | None = None
    monthly_budget_usd: Decimal | None = None


async def create_key(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    name: str | None = None,
    user: str | None = None,
    policies: Policies | None = None,
    end_user_id: uuid.UUID | None = None,
) -> CreatedKey:
    """A new key (`user` binds it to that end user; `end_user_id` to one known by id)."""
    if name is not None:
        check_text(name, "name", MAX_NAME_LENGTH)
    await get_tenant(session, tenant_id)
    if user is not None:
        end_user_id = await ensure_end_user(session, tenant_id, user)
    policies = policies or Policies()
    key = generate_key()
    row = ApiKey(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        end_user_id=end_user_id,
        name=name,
        key_hash=hash_key(key),
        prefix=display_prefix(key),
        expires_at=policies.expires_at,
        allowed_models=policies.allowed_models,
        monthly_budget_usd=policies.monthly_budget_usd,
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
    last_used_at: datetime | None  # written in batches (api/keys/usage.py): may lag seconds
    expires_at: datetime | None
    revoked_at: datetime | None  # in the future: a scheduled revocation
    allowed_models: list[str] | None
    monthly_budget_usd: Decimal | None


async def _listings(session: AsyncSession, *where: ColumnElement[bool]) -> list[KeyListing]:
    stmt = (
        select(
            ApiKey.id,
            ApiKey.prefix,
            ApiKey.name,
            EndUser.external_id,
            ApiKey.created_at,
            ApiKey.last_used_at,
            ApiKey.expires_at,
            ApiKey.revoked_at,
            ApiKey.allowed_models,
            ApiKey.monthly_budget_usd,
        )
        .outerjoin(EndUser, EndUser.id == ApiKey.end_user_id)
        .where(*where)
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return [KeyListing(*tuple(row)) for row in await session.execute(stmt)]


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
    """Revoke the key now (a revocation scheduled for later is brought forward) and return
    when; a key revoked before raises KeyAlreadyRevoked (even when two revocations race,
    exactly one succeeds)."""
    revoked = await session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.revoked_at.is_(None), ApiKey.revoked_at > func.now()),
        )
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
