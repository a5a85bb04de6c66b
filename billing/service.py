"""Creating a tenant's Razorpay subscription: check the plan and that the tenant has no live
subscription, create the customer and the subscription at Razorpay (notes carry our tenant id),
then record it. Razorpay is called outside any transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.audit import Actor, record
from api.db.models import Plan, Subscription
from api.errors import BadGateway, InvalidRequest
from api.inputs import clip
from api.tenants.service import get_tenant
from billing.gateway import RazorpayGateway, RazorpayRefused, RazorpayUnavailable
from billing.repository import insert_created, live_subscription_id
from billing.settings import BillingSettings


@dataclass(frozen=True)
class CreatedSubscription:
    id: str
    short_url: str | None


def _created_at(entity: dict[str, Any]) -> datetime:
    created = entity.get("created_at")
    if isinstance(created, int) and not isinstance(created, bool):
        return datetime.fromtimestamp(created, UTC)
    return datetime.now(UTC)


async def _checked_plan(session: AsyncSession, tenant_id: uuid.UUID, plan_code: str) -> Plan:
    plan = await session.get(Plan, plan_code)
    if plan is None or plan.razorpay_plan_id is None:
        raise InvalidRequest(f"plan: {clip(plan_code)} is unknown or has no razorpay_plan_id")
    live = await live_subscription_id(session, tenant_id)
    if live is not None:
        raise InvalidRequest(f"tenant already has subscription {live}; cancel it first")
    return plan


async def create_subscription(
    sessions: async_sessionmaker[AsyncSession],
    gateway: RazorpayGateway,
    settings: BillingSettings,
    tenant_id: uuid.UUID,
    plan_code: str,
    actor: Actor,
) -> CreatedSubscription:
    """Recorded in the audit log with the subscription row (by `actor`).
    404 for an unknown tenant, 400 for a plan that cannot be sold or a tenant that already
    has a live subscription, 502 when Razorpay fails."""
    async with sessions() as session:
        tenant = await get_tenant(session, tenant_id)
        plan = await _checked_plan(session, tenant_id, plan_code)
    notes = {"tenant_id": str(tenant_id)}
    try:
        customer = await gateway.create_customer(tenant.name, notes)
        remote = await gateway.create_subscription(
            {
                "plan_id": plan.razorpay_plan_id,
                "customer_id": customer["id"],
                "total_count": settings.total_count,
                "customer_notify": 1,
                "notes": notes,
            }
        )
        row = Subscription(
            id=remote["id"],
            tenant_id=tenant_id,
            plan_code=plan.code,
            status=str(remote.get("status", "created")),
            customer_id=customer["id"],
            short_url=remote.get("short_url"),
            version_at=_created_at(remote),  # Razorpay's clock, like its events
        )
    except (RazorpayUnavailable, RazorpayRefused, KeyError) as exc:
        raise BadGateway(f"Razorpay: {exc}") from None
    after = {"id": row.id, "plan": row.plan_code, "status": row.status, "short_url": row.short_url}
    async with sessions() as session, session.begin():
        await insert_created(session, row)
        await record(session, actor, "subscription.create", "tenant", tenant_id, None, after)
    return CreatedSubscription(id=row.id, short_url=row.short_url)
