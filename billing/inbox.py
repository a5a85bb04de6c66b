"""The webhook inbox: store every verified event once (keyed by its event id), then apply it.
Applying runs at once after storing (it is a few row updates) and again from a background loop
for anything that failed, so a stored event is never lost."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing.models import WebhookEvent
from billing.settings import BillingSettings
from billing.subscriptions import RemoteState, apply_state

log = logging.getLogger(__name__)

_STORE = text(
    """
    INSERT INTO webhook_events (event_id, event, subscription_id, payload)
    VALUES (:event_id, :event, :subscription_id, CAST(:payload AS jsonb))
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
)


def subscription_entity(payload: dict[str, Any]) -> dict[str, Any] | None:
    sub = (payload.get("payload") or {}).get("subscription")
    entity = sub.get("entity") if isinstance(sub, dict) else None
    return entity if isinstance(entity, dict) and "id" in entity else None


def event_time(payload: dict[str, Any]) -> datetime:
    """The event's own time: top-level `created_at`, or (one documented sample) inside
    `payload`; else now."""
    for where in (payload, payload.get("payload") or {}):
        value = where.get("created_at") if isinstance(where, dict) else None
        if isinstance(value, int | str) and str(value).isdigit():
            return datetime.fromtimestamp(int(value), UTC)
    return datetime.now(UTC)


async def store(session: AsyncSession, event_id: str, raw: str, payload: dict[str, Any]) -> bool:
    """True if this delivery is new, False for a duplicate."""
    entity = subscription_entity(payload)
    params = {
        "event_id": event_id,
        "event": str(payload.get("event", "")),
        "subscription_id": str(entity["id"]) if entity else None,
        "payload": raw,
    }
    return (await session.execute(_STORE, params)).first() is not None


async def process(session: AsyncSession, event_id: str, settings: BillingSettings) -> bool:
    """Apply one stored event if nobody has yet; True if it was applied now."""
    row = await session.scalar(
        select(WebhookEvent)
        .where(WebhookEvent.event_id == event_id, WebhookEvent.processed_at.is_(None))
        .with_for_update(skip_locked=True)
    )
    if row is None:
        return False
    entity = subscription_entity(row.payload)
    if entity is not None:  # unknown and non-subscription events are stored and acknowledged
        await apply_state(session, RemoteState.parse(entity), event_time(row.payload), settings)
    row.processed_at = datetime.now(UTC)
    row.attempts += 1
    row.error = None
    return True


async def receive(
    sessions: async_sessionmaker[AsyncSession],
    settings: BillingSettings,
    event_id: str,
    payload: dict[str, Any],
) -> bool:
    """Store a verified delivery once and try to apply it now; False for a duplicate. A failure
    to apply is logged, not raised: the event is stored and the background loop retries it."""
    async with sessions() as session, session.begin():
        new = await store(session, event_id, json.dumps(payload), payload)
    if new:
        try:
            async with sessions() as session, session.begin():
                await process(session, event_id, settings)
        except Exception:
            log.exception("webhook %s stored; applying it failed, will retry", event_id)
    return new


async def process_pending(
    sessions: async_sessionmaker[AsyncSession], settings: BillingSettings, limit: int = 200
) -> int:
    """Apply stored events that are not applied yet (oldest first); one transaction each."""
    async with sessions() as session:
        ids = list(
            await session.scalars(
                select(WebhookEvent.event_id)
                .where(WebhookEvent.processed_at.is_(None))
                .order_by(WebhookEvent.received_at)
                .limit(limit)
            )
        )
    applied = 0
    for event_id in ids:
        try:
            async with sessions() as session, session.begin():
                applied += await process(session, event_id, settings)
        except Exception as exc:  # keep going; the event stays unprocessed and is retried
            log.warning("webhook %s not applied: %s", event_id, type(exc).__name__)
            async with sessions() as session, session.begin():
                await session.execute(
                    text(
                        "UPDATE webhook_events SET attempts = attempts + 1, error = :e "
                        "WHERE event_id = :id"
                    ),
                    {"e": type(exc).__name__, "id": event_id},
                )
    return applied
