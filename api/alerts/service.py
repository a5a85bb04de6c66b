"""Alert settings and the delivery record. Services flush; the caller commits (and records the
change in the audit log — never the secret)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.alerts.models import AlertEvent, AlertSettings
from api.db.models import EndUser
from api.tenants.service import get_tenant

DEFAULT_THRESHOLDS = (50, 80, 100)
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True)
class Alerts:
    url: str
    thresholds: list[int]
    secret: str


async def get_alerts(session: AsyncSession, tenant_id: uuid.UUID) -> Alerts | None:
    row = await session.get(AlertSettings, tenant_id)
    return None if row is None else Alerts(row.url, list(row.thresholds), row.secret)


async def put_alerts(
    session: AsyncSession, tenant_id: uuid.UUID, url: str, thresholds: list[int]
) -> Alerts:
    """Set the URL and thresholds; the signing secret is generated the first time and kept."""
    await get_tenant(session, tenant_id)
    stmt = insert(AlertSettings).values(
        tenant_id=tenant_id,
        url=url,
        thresholds=thresholds,
        secret=SECRET_PREFIX + secrets.token_urlsafe(32),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[AlertSettings.tenant_id],
        set_={"url": url, "thresholds": thresholds, "updated_at": stmt.excluded.updated_at},
    )
    await session.execute(stmt)
    found = await get_alerts(session, tenant_id)
    assert found is not None
    return found


async def deliveries(session: AsyncSession, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """The tenant's alerts, newest first, with how their delivery went."""
    await get_tenant(session, tenant_id)
    stmt = (
        select(AlertEvent, EndUser.external_id)
        .outerjoin(EndUser, EndUser.id == AlertEvent.end_user_id)
        .where(AlertEvent.tenant_id == tenant_id)
        .order_by(AlertEvent.created_at.desc(), AlertEvent.id)
        .limit(500)
    )
    out = []
    for event, user in await session.execute(stmt):
        out.append(
            {
                "id": event.id,
                "user": user,
                "threshold_pct": event.threshold_pct,
                "period_start": event.period_start,
                "period_end": event.period_end,
                "limit_usd": event.limit_usd,
                "spent_usd": event.spent_usd,
                "created_at": event.created_at,
                "attempts": event.attempts,
                "last_status": event.last_status,
                "last_error": event.last_error,
                "last_attempt_at": event.last_attempt_at,
                "delivered_at": event.delivered_at,
                "next_attempt_at": None if event.delivered_at else event.next_attempt_at,
            }
        )
    return out
