"""The webhook receiver: signatures on the raw bytes, each event once, every subscription event
type, and out-of-order deliveries that never move a subscription backwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.conftest import WEBHOOK_SECRET, Billed
from tests.fakes.razorpay import send_reserialized, sign


async def inbox(engine: AsyncEngine) -> list[tuple[str, bool]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT event_id, processed_at IS NOT NULL FROM webhook_events")
        )
        return [(r[0], r[1]) for r in rows]


def test_subscription_creation_returns_the_short_url(billed: Billed) -> None:
    assert billed.sub_id.startswith("sub_") and billed.short_url
    remote = billed.fake.subscription(billed.sub_id)
    assert remote["notes"]["tenant_id"] == str(billed.tenant_id)
    assert billed.tenant()["plan"] == "free"  # nothing changes before it is paid


def test_activation_gives_the_plan_and_the_cycle_as_budget_period(billed: Billed) -> None:
    assert billed.deliver(billed.fake.advance(billed.sub_id, "authenticated")).status_code == 200
    assert billed.tenant()["plan"] == "free"
    billed.deliver(billed.fake.advance(billed.sub_id, "activated"))
    remote = billed.fake.subscription(billed.sub_id)
    tenant = billed.tenant()
    assert (tenant["plan"], tenant["status"]) == ("pro", "active")
    assert tenant["subscription"]["id"] == billed.sub_id
    assert tenant["subscription"]["status"] == "active"
    assert tenant["subscription"]["current_end"] is not None
    usage = billed.usage()
    assert usage["plan"] == "pro"
    from datetime import UTC, datetime

    assert usage["period_start"].startswith(
        datetime.fromtimestamp(remote["current_start"], UTC).strftime("%Y-%m-%dT%H:%M")
    )


@pytest.mark.parametrize(
    ("steps", "plan", "status"),
    [
        (["authenticated", "activated", "charged"], "pro", "active"),
        (["authenticated", "activated", "charged", "halted"], "free", "active"),
        (["authenticated", "activated", "cancelled"], "free", "active"),
        (["authenticated", "activated", "paused"], "free", "active"),
        (["authenticated", "activated", "paused", "resumed"], "pro", "active"),
        (["authenticated", "activated", "charged", "completed"], "free", "active"),
        (["authenticated", "activated", "updated"], "pro", "active"),
        (["authenticated", "activated", "pending"], "pro", "active"),  # within the grace
    ],
)
def test_every_event_type_moves_the_tenant(
    billed: Billed, steps: list[str], plan: str, status: str
) -> None:
    for step in steps:
        assert billed.deliver(billed.fake.advance(billed.sub_id, step)).status_code == 200
    tenant = billed.tenant()
    assert (tenant["plan"], tenant["status"]) == (plan, status)


def test_pending_past_its_grace_and_block_mode_suspend(
    billed_factory: Callable[..., Billed],
) -> None:
    billed = billed_factory(grace_hours=0, lapsed="block")
    for step in ("authenticated", "activated", "pending"):
        billed.deliver(billed.fake.advance(billed.sub_id, step))
    assert billed.tenant()["status"] == "suspended"
    response = httpx.post(
        billed.gateway.url + "/v1/messages",
        headers={"x-api-key": billed.key},
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert response.status_code == 403
    billed.deliver(billed.fake.advance(billed.sub_id, "charged"))  # the retry succeeded
    assert billed.tenant()["status"] == "active"


async def test_duplicates_are_stored_once(billed: Billed, engine: AsyncEngine) -> None:
    event = billed.fake.advance(billed.sub_id, "authenticated")
    first = billed.deliver(event, "evt_dup_1")
    second = billed.deliver(event, "evt_dup_1")
    assert first.json() == {"status": "ok", "duplicate": False}
    assert second.json() == {"status": "ok", "duplicate": True}
    assert await inbox(engine) == [("evt_dup_1", True)]


def _steps(billed: Billed, *names: str) -> list[dict[str, Any]]:
    return [billed.fake.advance(billed.sub_id, name) for name in names]


def test_charged_before_activated(billed: Billed) -> None:
    auth, activated, charged = _steps(billed, "authenticated", "activated", "charged")
    for event in (auth, charged, activated):
        billed.deliver(event)
    assert billed.tenant()["plan"] == "pro"
    with billed.admin() as http:
        sub = http.get(f"/admin/tenants/{billed.tenant_id}").json()
    assert sub["status"] == "active"


def test_pending_after_activated_and_an_old_active_after_cancelled(billed: Billed) -> None:
    auth, activated, pending = _steps(billed, "authenticated", "activated", "pending")
    for event in (auth, activated, pending):
        billed.deliver(event)
    assert billed.tenant()["plan"] == "pro"  # pending, within its grace
    billed.deliver(billed.fake.advance(billed.sub_id, "cancelled"))
    assert billed.tenant()["plan"] == "free"
    billed.deliver(activated, "evt_late_replay")  # an old `active` arriving late
    assert billed.tenant()["plan"] == "free"


async def test_unknown_event_types_are_stored_and_acknowledged(
    billed: Billed, engine: AsyncEngine
) -> None:
    event = {
        "entity": "event",
        "event": "payment.captured",
        "contains": ["payment"],
        "payload": {"payment": {"entity": {"id": "pay_1"}}},
        "created_at": 1,
    }
    assert billed.deliver(event, "evt_other").status_code == 200
    assert ("evt_other", True) in await inbox(engine)


@pytest.mark.parametrize("case", ["forged", "missing", "reserialized", "no_event_id"])
async def test_bad_signatures_are_refused_and_nothing_is_stored(
    billed: Billed, engine: AsyncEngine, case: str
) -> None:
    event = billed.fake.advance(billed.sub_id, "authenticated")
    url = billed.gateway.url + "/webhooks/razorpay"
    body = b'{"entity":"event","event":"subscription.activated"}'
    if case == "reserialized":
        response = send_reserialized(url, event, WEBHOOK_SECRET, style="pretty")
    else:
        headers = {"content-type": "application/json", "x-razorpay-event-id": "evt_x"}
        if case == "forged":
            headers["x-razorpay-signature"] = sign(body, "not-the-secret")
        elif case == "no_event_id":
            headers["x-razorpay-signature"] = sign(body, WEBHOOK_SECRET)
            del headers["x-razorpay-event-id"]
        response = httpx.post(url, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert await inbox(engine) == []


def test_resigned_reserialized_body_is_accepted(billed: Billed) -> None:
    event = billed.fake.advance(billed.sub_id, "authenticated")
    url = billed.gateway.url + "/webhooks/razorpay"
    assert (
        send_reserialized(url, event, WEBHOOK_SECRET, style="pretty", resign=True).status_code
        == 200
    )


def test_webhook_answers_503_when_billing_is_off(gateway: Any) -> None:
    response = httpx.post(gateway.url + "/webhooks/razorpay", content=b"{}")
    assert response.status_code == 503
