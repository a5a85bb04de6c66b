"""Applying a Razorpay subscription state to Tollgate, idempotently and only forwards.

Order of events is not guaranteed, so each state carries a version: the number of successful
charges (`paid_count`, which only grows) and then the event's time. A state older than the one
held is ignored, and a final state (cancelled, completed, expired) is never left. The effect on
the tenant follows from the subscription's own `status` field, whatever the event is called."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import Plan, Subscription, Tenant
from billing.settings import BillingSettings

FINAL = frozenset({"cancelled", "completed", "expired"})
LAPSED = frozenset({"halted", "cancelled", "completed", "expired", "paused"})
FALLBACK_PLAN = "free"


def _time(value: object) -> datetime | None:
    if isinstance(value, bool) or value in (None, "", 0):
        return None
    try:
        return datetime.fromtimestamp(int(str(value)), UTC)
    except (TypeError, ValueError):
        return None


def _int(value: object) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class RemoteState:
    """The fields we use of a Razorpay subscription entity (tolerant of its quirks)."""

    id: str
    plan_id: str | None
    status: str
    paid_count: int
    current_start: datetime | None
    current_end: datetime | None
    customer_id: str | None
    short_url: str | None
    tenant_id: uuid.UUID | None

    @classmethod
    def parse(cls, entity: dict[str, Any]) -> RemoteState:
        notes = entity.get("notes")
        tenant = notes.get("tenant_id") if isinstance(notes, dict) else None  # [] when empty
        try:
            tenant_id = uuid.UUID(str(tenant)) if tenant else None
        except ValueError:
            tenant_id = None
        return cls(
            id=str(entity["id"]),
            plan_id=entity.get("plan_id"),
            status=str(entity.get("status", "")),
            paid_count=_int(entity.get("paid_count")),
            current_start=_time(entity.get("current_start")),
            current_end=_time(entity.get("current_end")),
            customer_id=entity.get("customer_id"),
            short_url=entity.get("short_url"),
            tenant_id=tenant_id,
        )


def is_newer(row: Subscription, state: RemoteState, at: datetime) -> bool:
    if row.status in FINAL:
        return False
    if state.paid_count != row.paid_count:
        return state.paid_count > row.paid_count
    return at >= row.version_at


def _cycle_ended(row: Subscription, state: RemoteState) -> bool:
    return (
        row.current_start is not None
        and row.current_end is not None
        and state.current_start is not None
        and state.current_start > row.current_start
    )


async def _plan_code(session: AsyncSession, razorpay_plan_id: str | None) -> str | None:
    if razorpay_plan_id is None:
        return None
    found = await session.execute(
        select(Plan.code).where(Plan.razorpay_plan_id == razorpay_plan_id)
    )
    return found.scalar_one_or_none()


async def apply_state(
    session: AsyncSession, state: RemoteState, at: datetime, settings: BillingSettings
) -> bool:
    """Record `state` (seen at `at`) if it is newer than what we hold; True if it was."""
    row = await session.get(Subscription, state.id, with_for_update=True)
    plan_code = await _plan_code(session, state.plan_id)
    if row is None:
        if state.tenant_id is None or plan_code is None:
            return False  # not one of ours (no tenant note) or a plan we do not map
        if await session.get(Tenant, state.tenant_id) is None:
            return False
        row = Subscription(
            id=state.id,
            tenant_id=state.tenant_id,
            plan_code=plan_code,
            status=state.status,
            version_at=at,
        )
        session.add(row)
    elif not is_newer(row, state, at):
        return False
    elif _cycle_ended(row, state) and settings.usd_inr_rate is not None:
        # A new cycle began: the one that ended is billed for overage (intent recorded in this
        # same transaction; the sync makes sure the add-on exists).
        from billing.overage import record_intent

        assert row.current_start is not None and row.current_end is not None
        await record_intent(session, row, row.current_start, row.current_end, settings.usd_inr_rate)
    if state.status == "pending" and row.status != "pending":
        row.pending_since = at
    elif state.status != "pending":
        row.pending_since = None
    row.status = state.status
    row.plan_code = plan_code or row.plan_code
    row.paid_count = state.paid_count
    row.current_start = state.current_start or row.current_start
    row.current_end = state.current_end or row.current_end
    row.customer_id = state.customer_id or row.customer_id
    row.short_url = state.short_url or row.short_url
    row.version_at = max(at, row.version_at)
    row.updated_at = datetime.now(UTC)
    await session.flush()
    await apply_to_tenant(session, row, settings, datetime.now(UTC))
    return True


def in_good_standing(row: Subscription, settings: BillingSettings, now: datetime) -> bool:
    if row.status == "active":
        return True
    if row.status == "pending" and row.pending_since is not None:
        return now < row.pending_since + timedelta(hours=float(settings.grace_hours))
    return False


async def apply_to_tenant(
    session: AsyncSession, row: Subscription, settings: BillingSettings, now: datetime
) -> None:
    """Active (or pending within grace): the subscription's plan and cycle. Lapsed: the
    fallback plan, or suspended. Not yet paid (created, authenticated): no change."""
    tenant = await session.get(Tenant, row.tenant_id, with_for_update=True)
    if tenant is None:
        return
    if in_good_standing(row, settings, now):
        tenant.plan_code = row.plan_code
        tenant.status = "active"
        tenant.billing_period_start = row.current_start
        tenant.billing_period_end = row.current_end
    elif row.status in LAPSED or row.status == "pending":
        tenant.billing_period_start = tenant.billing_period_end = None
        if settings.lapsed == "block":
            tenant.status = "suspended"
        else:
            tenant.plan_code = FALLBACK_PLAN
    tenant.updated_at = now
    await session.flush()
