"""The reconciling sync: fetch every live subscription from Razorpay and repair whatever a lost
or late webhook left wrong; end grace periods that ran out; make sure every recorded overage
intent has its add-on. Razorpay trouble is logged and retried on the next run; each
subscription is updated in its own transaction, so nothing is half-applied. Runs from
`tollgate billing sync` and periodically in every replica, one at a time (advisory lock)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.db.models import Subscription
from billing.gateway import RazorpayGateway, RazorpayRefused, RazorpayUnavailable
from billing.models import OverageCharge
from billing.overage import bill
from billing.settings import BillingSettings
from billing.subscriptions import FINAL, RemoteState, apply_state, apply_to_tenant

log = logging.getLogger(__name__)

SYNC_LOCK = 0x70_11_6A_7F  # pg advisory lock key: "tollgate billing sync"


@dataclass
class SyncReport:
    checked: int = 0
    repaired: int = 0
    overage_billed: int = 0
    failures: list[str] = field(default_factory=list)
    skipped_locked: bool = False


async def _refresh(
    sessions: async_sessionmaker[AsyncSession],
    gateway: RazorpayGateway,
    settings: BillingSettings,
    report: SyncReport,
) -> None:
    async with sessions() as session:
        live = list(
            await session.scalars(select(Subscription.id).where(Subscription.status.not_in(FINAL)))
        )
    for sub_id in live:
        report.checked += 1
        try:
            state = RemoteState.parse(await gateway.fetch_subscription(sub_id))
        except (RazorpayUnavailable, RazorpayRefused, KeyError) as exc:
            report.failures.append(f"{sub_id}: {exc}")
            log.warning("billing sync: %s not refreshed: %s", sub_id, exc)
            continue
        async with sessions() as session, session.begin():
            # A fetched entity is the truth as of now: it outranks every event sent before.
            report.repaired += await apply_state(session, state, datetime.now(UTC), settings)


async def _end_grace(sessions: async_sessionmaker[AsyncSession], settings: BillingSettings) -> None:
    async with sessions() as session, session.begin():
        for row in await session.scalars(
            select(Subscription).where(Subscription.status == "pending").with_for_update()
        ):
            await apply_to_tenant(session, row, settings, datetime.now(UTC))


async def _bill_intents(
    sessions: async_sessionmaker[AsyncSession], gateway: RazorpayGateway, report: SyncReport
) -> None:
    async with sessions() as session:
        intents = list(
            await session.scalars(select(OverageCharge.id).where(OverageCharge.status == "intent"))
        )
    for charge_id in intents:
        try:
            await bill(sessions, gateway, charge_id)
            report.overage_billed += 1
        except (RazorpayUnavailable, RazorpayRefused) as exc:
            report.failures.append(f"overage {charge_id}: {exc}")
            log.warning("billing sync: overage %s not billed yet: %s", charge_id, exc)


async def sync_once(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    gateway: RazorpayGateway,
    settings: BillingSettings,
) -> SyncReport:
    report = SyncReport()
    async with engine.connect() as lock_conn:
        got = (
            await lock_conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": SYNC_LOCK})
        ).scalar_one()
        await lock_conn.commit()
        if not got:
            report.skipped_locked = True
            return report
        try:
            await _refresh(sessions, gateway, settings, report)
            await _end_grace(sessions, settings)
            await _bill_intents(sessions, gateway, report)
        finally:
            await lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SYNC_LOCK})
            await lock_conn.commit()
    return report


async def sync_forever(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    gateway: RazorpayGateway,
    settings: BillingSettings,
) -> None:
    while True:
        await asyncio.sleep(float(settings.sync_interval_s))
        try:
            report = await sync_once(engine, sessions, gateway, settings)
            if report.repaired or report.failures:
                log.info("billing sync: %s", report)
        except Exception:
            log.exception("billing sync failed; next run in %ss", settings.sync_interval_s)
