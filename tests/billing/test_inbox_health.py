"""`GET /admin/billing/inbox`: the webhook inbox's health as the console shows it."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.conftest import Billed
from tests.support import Gateway

# A stored event whose application raised twice in the background loop (as process_pending
# records it): still pending, so it counts as failing.
_FAILED = text(
    """
    INSERT INTO webhook_events (event_id, event, subscription_id, payload, attempts, error,
                                received_at)
    VALUES ('evt_failed_1', 'subscription.charged', 'sub_x', CAST(:payload AS jsonb), 2,
            'IntegrityError', now() - interval '1 hour')
    """
)


async def test_inbox_health_counts_events_and_names_the_failing_ones(
    billed: Billed, engine: AsyncEngine
) -> None:
    with billed.admin() as http:
        empty = http.get("/admin/billing/inbox").json()
    assert empty == {
        "enabled": True,
        "received": 0,
        "pending": 0,
        "failing": 0,
        "attempts": 0,
        "last_event": None,
        "oldest_pending_at": None,
        "failures": [],
    }
    assert billed.deliver(billed.fake.advance(billed.sub_id, "authenticated")).status_code == 200
    async with engine.begin() as conn:
        await conn.execute(_FAILED, {"payload": json.dumps({"event": "subscription.charged"})})
    with billed.admin() as http:
        health = http.get("/admin/billing/inbox").json()
        assert (
            http.get(f"/admin/tenants/{billed.tenant_id}").json()["subscription"]["short_url"]
            == billed.short_url
        )
    assert (health["received"], health["pending"], health["failing"]) == (2, 1, 1)
    assert health["attempts"] == 3  # the applied event's one, and the failing one's two
    assert health["last_event"]["event"] == "subscription.authenticated"
    assert health["last_event"]["processed_at"] is not None
    [failure] = health["failures"]
    assert failure["event_id"] == "evt_failed_1" and failure["error"] == "IntegrityError"
    assert failure["attempts"] == 2 and failure["processed_at"] is None
    assert health["oldest_pending_at"] == failure["received_at"]


async def test_inbox_health_answers_with_billing_off_and_needs_the_admin_token(
    gateway_factory: Callable[..., Gateway],
) -> None:
    gateway = gateway_factory(admin_token="adm")
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        assert (await http.get("/admin/billing/inbox")).status_code == 401
        answer = await http.get("/admin/billing/inbox", headers={"authorization": "Bearer adm"})
    assert answer.status_code == 200
    assert answer.json()["enabled"] is False and answer.json()["received"] == 0
