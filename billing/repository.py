"""Subscription rows as the create flow needs them (the webhook and sync paths write theirs in
`subscriptions.py`, which also decides what a state means for the tenant)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.models import Subscription
from billing.subscriptions import FINAL


async def live_subscription_id(session: AsyncSession, tenant_id: uuid.UUID) -> str | None:
    """The tenant's subscription that has not reached a final state, if any."""
    found: str | None = await session.scalar(
        select(Subscription.id).where(
            Subscription.tenant_id == tenant_id, Subscription.status.not_in(FINAL)
        )
    )
    return found


async def insert_created(session: AsyncSession, row: Subscription) -> None:
    """Store a subscription just created at Razorpay, unless a webhook for it (it carries our
    tenant id) already did: that row is at least as new."""
    await session.execute(
        insert(Subscription)
        .values(
            id=row.id,
            tenant_id=row.tenant_id,
            plan_code=row.plan_code,
            status=row.status,
            customer_id=row.customer_id,
            short_url=row.short_url,
            version_at=row.version_at,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
