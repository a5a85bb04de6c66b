"""Changing a key's policies (PATCH) and rotating it: a new key with the same tenant, end user,
name and policies, and the old one's revocation scheduled for `revoke_at` (both work until
then). Services flush; the caller commits (and records the change in the audit log)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import ApiKey
from api.errors import Conflict, InvalidRequest, NotFound
from api.keys.service import CreatedKey, Policies, create_key

POLICY_FIELDS = ("expires_at", "allowed_models", "monthly_budget_usd")
DEFAULT_OVERLAP = timedelta(hours=24)


async def _live_key(session: AsyncSession, key_id: uuid.UUID) -> ApiKey:
    """The key, locked; 404 unknown, 409 revoked (a scheduled revocation still counts as live)."""
    key = await session.get(ApiKey, key_id, with_for_update=True, populate_existing=True)
    if key is None:
        raise NotFound(f"key {key_id} not found")
    now = (await session.execute(select(func.now()))).scalar_one()
    if key.revoked_at is not None and key.revoked_at <= now:
        raise Conflict(f"key {key_id} is revoked")
    return key


async def update_policies(session: AsyncSession, key_id: uuid.UUID, given: dict[str, Any]) -> None:
    """Set the policy fields in `given` (None removes one)."""
    key = await _live_key(session, key_id)
    for field in POLICY_FIELDS:
        if field in given:
            setattr(key, field, given[field])
    await session.flush()


async def rotate_key(
    session: AsyncSession, key_id: uuid.UUID, revoke_at: datetime | None
) -> tuple[CreatedKey, datetime]:
    """A new key like the old one; the old one stops at `revoke_at` (default: in 24 hours; not
    in the past, and not later than a revocation already scheduled)."""
    old = await _live_key(session, key_id)
    now = datetime.now(UTC)
    when = revoke_at or now + DEFAULT_OVERLAP
    if when < now - timedelta(seconds=5):
        raise InvalidRequest("revoke_at: must not be in the past")
    if old.revoked_at is not None:
        when = min(when, old.revoked_at)
    created = await create_key(
        session,
        old.tenant_id,
        name=old.name,
        end_user_id=old.end_user_id,
        policies=Policies(old.expires_at, old.allowed_models, old.monthly_budget_usd),
    )
    old.revoked_at = when
    await session.flush()
    return created, when
