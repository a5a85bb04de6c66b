"""The reconciling sync repairs what a lost webhook left wrong and survives Razorpay being down;
overage is billed as exactly one add-on across a crash and re-runs; a burst of 500 deliveries
(with duplicates, out of order) loses and doubles nothing."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing.gateway import RazorpayGateway
from billing.overage import MARKER
from billing.sync import sync_once
from tests.billing.conftest import ADMIN, WEBHOOK_SECRET, Billed, billing_settings
from tests.fakes.razorpay import signed_webhook


async def run_sync(billed: Billed, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    settings = billing_settings(billed.fake)
    return await sync_once(engine, sessions, RazorpayGateway(settings), settings)


async def test_a_lost_webhook_is_repaired_by_the_sync(
    billed: Billed, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    billed.deliver(billed.fake.advance(billed.sub_id, "authenticated"))
    billed.fake.advance(billed.sub_id, "activated")  # this delivery is lost
    assert billed.tenant()["plan"] == "free"
    report = await run_sync(billed, engine, sessions)
    assert (report.checked, report.repaired, report.failures) == (1, 1, [])
    assert billed.tenant()["plan"] == "pro"
    again = await run_sync(billed, engine, sessions)  # nothing left to repair
    assert again.failures == [] and billed.tenant()["plan"] == "pro"


async def test_razorpay_down_during_sync_changes_nothing_then_recovers(
    billed: Billed, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    billed.deliver(billed.fake.advance(billed.sub_id, "authenticated"))
    billed.fake.advance(billed.sub_id, "activated")  # lost
    for status in (500, 502):
        billed.fake.fail_next(1, status=status)
        report = await run_sync(billed, engine, sessions)
        assert len(report.failures) == 1 and report.repaired == 0
        assert billed.tenant()["plan"] == "free"
    billed.fake.malformed_next(1, kind="html")
    assert len((await run_sync(billed, engine, sessions)).failures) == 1
    billed.fake.delay_next(1, 3.0)  # longer than RAZORPAY_TIMEOUT_S=2
    assert len((await run_sync(billed, engine, sessions)).failures) == 1
    assert billed.tenant()["plan"] == "free"
    report = await run_sync(billed, engine, sessions)
    assert report.failures == [] and billed.tenant()["plan"] == "pro"


async def _spend(engine: AsyncEngine, billed: Billed, usd: str) -> None:
    """Spend in the subscription's current cycle (as settled requests would have added)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO spend_counters (tenant_id, end_user_id, period_start, period_end, "
                "spent_usd) SELECT id, NULL, billing_period_start, billing_period_end, :usd "
                "FROM tenants WHERE id = :t"
            ),
            {"usd": Decimal(usd), "t": billed.tenant_id},
        )


async def test_overage_is_billed_once_across_a_crash_and_reruns(
    billed: Billed, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for step in ("authenticated", "activated", "charged"):
        billed.deliver(billed.fake.advance(billed.sub_id, step))
    await _spend(engine, billed, "123.45")  # pro includes $100
    billed.deliver(billed.fake.advance(billed.sub_id, "charged"))  # the next cycle began
    async with engine.connect() as conn:
        charge_id, paise, status = (
            await conn.execute(text("SELECT id, amount_paise, status FROM overage_charges"))
        ).one()
    # $23.45 x 84.50 INR/USD = 1981.525 INR -> 198153 paise (rounded up)
    assert (paise, status) == (198153, "intent")
    # The crash window: Razorpay created the add-on, then our process died before recording it.
    gateway = RazorpayGateway(billing_settings(billed.fake))
    await gateway.create_addon(
        billed.sub_id,
        {
            "item": {
                "name": "Usage overage",
                "amount": paise,
                "currency": "INR",
                "description": f"{MARKER}{charge_id} (crashed run)",
            },
            "quantity": 1,
        },
    )
    for _ in range(3):  # re-runs
        assert (await run_sync(billed, engine, sessions)).failures == []
    addons = billed.fake.addons_of(billed.sub_id)
    assert len(addons) == 1 and addons[0]["item"]["amount"] == 198153
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT status, addon_id FROM overage_charges"))).one()
    assert tuple(row) == ("created", addons[0]["id"])


async def test_overage_without_a_crash_creates_the_addon_once(
    billed: Billed, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for step in ("authenticated", "activated", "charged"):
        billed.deliver(billed.fake.advance(billed.sub_id, step))
    await _spend(engine, billed, "100.50")
    billed.deliver(billed.fake.advance(billed.sub_id, "charged"))
    billed.fake.fail_next(1, status=500)  # the first attempt fails: retried on the next run
    assert len((await run_sync(billed, engine, sessions)).failures) == 1
    for _ in range(2):
        await run_sync(billed, engine, sessions)
    posts = billed.fake.calls_to("POST", "/v1/subscriptions/*/addons")
    assert len([c for c in posts if c.status == 200]) == 1
    assert len(billed.fake.addons_of(billed.sub_id)) == 1


async def test_burst_of_500_deliveries_with_duplicates(billed: Billed, engine: AsyncEngine) -> None:
    with httpx.Client(
        base_url=billed.gateway.url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10
    ) as http:
        subs = [billed.sub_id]
        for n in range(24):
            tenant = http.post("/admin/tenants", json={"name": f"t{n}"}).json()
            subs.append(
                http.post(
                    f"/admin/tenants/{tenant['id']}/subscription", json={"plan": "pro"}
                ).json()["subscription_id"]
            )
    steps = ["authenticated", "activated"] + ["charged"] * 8
    events = [
        (f"evt_{sub}_{i}", billed.fake.advance(sub, step))
        for sub in subs
        for i, step in enumerate(steps)
    ]
    deliveries = events + events  # every event delivered twice
    random.Random(7).shuffle(deliveries)
    url = billed.gateway.url + "/webhooks/razorpay"
    async with httpx.AsyncClient(timeout=30) as client:
        gate = asyncio.Semaphore(50)

        async def deliver(event_id: str, event: dict[str, object]) -> int:
            signed = signed_webhook(event, WEBHOOK_SECRET, event_id)
            async with gate:
                response = await client.post(url, content=signed.body, headers=signed.headers)
            return response.status_code

        codes = await asyncio.gather(*(deliver(eid, ev) for eid, ev in deliveries))
    assert codes == [200] * 500
    async with engine.connect() as conn:
        stored, processed = (
            await conn.execute(text("SELECT count(*), count(processed_at) FROM webhook_events"))
        ).one()
        states = dict((await conn.execute(text("SELECT id, paid_count FROM subscriptions"))).all())
    assert (stored, processed) == (250, 250)
    assert states == {sub: billed.fake.subscription(sub)["paid_count"] for sub in subs}
    assert set(states.values()) == {8}


def test_billing_sync_command(billed: Billed, database_url: str) -> None:
    import os
    import subprocess
    import sys

    from tests.billing.conftest import KEY_ID, KEY_SECRET
    from tests.pg import asyncpg_dsn

    billed.deliver(billed.fake.advance(billed.sub_id, "authenticated"))
    billed.fake.advance(billed.sub_id, "activated")  # lost
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TOLLGATE_", "RAZORPAY_"))},
        "DATABASE_URL": asyncpg_dsn(database_url),
        "RAZORPAY_KEY_ID": KEY_ID,
        "RAZORPAY_KEY_SECRET": KEY_SECRET,
        "RAZORPAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "RAZORPAY_BASE_URL": billed.fake.url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "api", "billing", "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "checked 1 subscriptions, repaired 1" in done.stdout
    assert billed.tenant()["plan"] == "pro"


async def test_overage_under_one_rupee_is_recorded_not_billed(
    billed: Billed, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    for step in ("authenticated", "activated", "charged"):
        billed.deliver(billed.fake.advance(billed.sub_id, step))
    await _spend(engine, billed, "100.01")  # $0.01 x 84.50 = 0.845 INR -> 85 paise < 100
    billed.deliver(billed.fake.advance(billed.sub_id, "charged"))
    report = await run_sync(billed, engine, sessions)
    assert report.failures == [] and billed.fake.addons_of(billed.sub_id) == []
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT amount_paise, status FROM overage_charges"))).one()
    assert tuple(row) == (85, "waived")
