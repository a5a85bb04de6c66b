"""`GET /admin/billing/inbox`: the webhook inbox's health for operators (read-only, so it is
not audited and a viewer may call it). It reads the inbox table, so it answers even with billing
off (`enabled: false`): events stored before billing was turned off are still worth seeing.

`pending` events are stored but not applied yet (the background loop retries them); `failing`
are the pending ones whose last attempt raised (`error` holds the exception's name, never its
text); `attempts` counts background attempts."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.admin import require_admin
from api.state import State
from billing.models import WebhookEvent

router = APIRouter(tags=["billing"], dependencies=[Depends(require_admin)])
RECENT_FAILURES = 10


class InboxEvent(BaseModel):
    event_id: str
    event: str
    subscription_id: str | None
    received_at: datetime
    processed_at: datetime | None
    attempts: int
    error: str | None


class InboxHealth(BaseModel):
    enabled: bool
    received: int
    pending: int
    failing: int
    attempts: int
    last_event: InboxEvent | None
    oldest_pending_at: datetime | None
    failures: list[InboxEvent]


def _event(row: WebhookEvent) -> InboxEvent:
    return InboxEvent(
        event_id=row.event_id,
        event=row.event,
        subscription_id=row.subscription_id,
        received_at=row.received_at,
        processed_at=row.processed_at,
        attempts=row.attempts,
        error=row.error,
    )


async def inbox_health(session: AsyncSession, enabled: bool) -> InboxHealth:
    pending = WebhookEvent.processed_at.is_(None)
    failing = pending & WebhookEvent.error.is_not(None)
    counts = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(pending),
                func.count().filter(failing),
                func.coalesce(func.sum(WebhookEvent.attempts), 0),
                func.min(WebhookEvent.received_at).filter(pending),
            )
        )
    ).one()
    last = await session.scalar(
        select(WebhookEvent).order_by(WebhookEvent.received_at.desc()).limit(1)
    )
    failures = await session.scalars(
        select(WebhookEvent)
        .where(failing)
        .order_by(WebhookEvent.received_at.desc())
        .limit(RECENT_FAILURES)
    )
    return InboxHealth(
        enabled=enabled,
        received=counts[0],
        pending=counts[1],
        failing=counts[2],
        attempts=counts[3],
        oldest_pending_at=counts[4],
        last_event=_event(last) if last is not None else None,
        failures=[_event(row) for row in failures],
    )


@router.get("/admin/billing/inbox")
async def get_inbox_health(state: State) -> InboxHealth:
    async with state.sessions() as session, session.begin():
        return await inbox_health(session, enabled=state.billing is not None)
