"""Overage: at the end of each subscription cycle, the spend beyond the plan's included amount,
converted to INR paise at the configured rate, billed once as a subscription add-on.

The intent row is written (and committed) before Razorpay is called. An add-on carries the
intent's id in its description, so after a crash (add-on created, our row not updated) the next
run finds it in Razorpay's add-on list instead of creating a second one."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.db.models import Plan, Subscription
from billing.gateway import RazorpayGateway
from billing.models import OverageCharge

log = logging.getLogger(__name__)

MARKER = "tollgate-overage:"
MIN_ADDON_PAISE = 100

_CYCLE_SPEND = text(
    """
    SELECT spent_usd FROM spend_counters
    WHERE tenant_id = :tenant AND end_user_id IS NULL AND period_start = :start
    """
)


def to_paise(usd: Decimal, rate: Decimal) -> int:
    """USD to INR paise, rounded up to the next paisa."""
    return int((usd * rate * 100).to_integral_value(rounding=ROUND_CEILING))


async def record_intent(
    session: AsyncSession, sub: Subscription, start: datetime, end: datetime, rate: Decimal
) -> OverageCharge | None:
    """The overage intent for the cycle [start, end), created once; None if nothing is owed."""
    spent = Decimal(
        (await session.execute(_CYCLE_SPEND, {"tenant": sub.tenant_id, "start": start})).scalar()
        or 0
    )
    plan = await session.get(Plan, sub.plan_code)
    included = plan.monthly_budget_usd if plan is not None else Decimal(0)
    over = spent - included
    if over <= 0:
        return None
    paise = to_paise(over, rate)
    await session.execute(
        insert(OverageCharge)
        .values(
            id=uuid.uuid4(),
            tenant_id=sub.tenant_id,
            subscription_id=sub.id,
            cycle_start=start,
            cycle_end=end,
            spent_usd=spent,
            included_usd=included,
            overage_usd=over,
            amount_paise=paise,
            # Razorpay refuses add-ons under one rupee: such a cycle is recorded, not billed.
            status="intent" if paise >= MIN_ADDON_PAISE else "waived",
        )
        .on_conflict_do_nothing(constraint="uq_overage_charges_cycle")
    )
    return await session.scalar(
        select(OverageCharge).where(
            OverageCharge.subscription_id == sub.id, OverageCharge.cycle_start == start
        )
    )


async def _find_addon(gateway: RazorpayGateway, charge: OverageCharge) -> str | None:
    marker = f"{MARKER}{charge.id}"
    skip = 0
    while True:
        page = await gateway.list_addons(count=100, skip=skip)
        for addon in page:
            item = addon.get("item")
            if isinstance(item, dict) and marker in str(item.get("description", "")):
                return str(addon["id"])
        if len(page) < 100:
            return None
        skip += 100


async def bill(
    sessions: async_sessionmaker[AsyncSession], gateway: RazorpayGateway, charge_id: uuid.UUID
) -> str | None:
    """Make sure the add-on for this intent exists exactly once; returns its id."""
    async with sessions() as session:
        charge = await session.get(OverageCharge, charge_id)
        assert charge is not None
    if charge.status == "created":
        return charge.addon_id
    addon_id = await _find_addon(gateway, charge)
    if addon_id is None:
        addon = await gateway.create_addon(
            charge.subscription_id,
            {
                "item": {
                    "name": "Usage overage",
                    "amount": charge.amount_paise,
                    "currency": "INR",
                    "description": f"{MARKER}{charge.id} ${charge.overage_usd:f} over "
                    f"{charge.cycle_start:%Y-%m-%d}..{charge.cycle_end:%Y-%m-%d}",
                },
                "quantity": 1,
            },
        )
        addon_id = str(addon["id"])
    async with sessions() as session, session.begin():
        row = await session.get(OverageCharge, charge_id, with_for_update=True)
        assert row is not None
        row.status, row.addon_id, row.updated_at = "created", addon_id, datetime.now(UTC)
    log.info("overage add-on %s for %s", addon_id, charge.subscription_id)
    return addon_id
