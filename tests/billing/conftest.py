"""A fake Razorpay, a Tollgate with billing on against it, and a tenant subscribed to `pro`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
import razorpay

from billing.settings import BillingSettings
from tests.fakes.razorpay import FakeRazorpay, send_webhook, start_fake_razorpay
from tests.support import Gateway

KEY_ID, KEY_SECRET, WEBHOOK_SECRET, ADMIN = "rzp_test_k1", "s3cret-key", "whsec-123", "admin-t"


@pytest.fixture
def fake() -> Iterator[FakeRazorpay]:
    with start_fake_razorpay(KEY_ID, KEY_SECRET) as server:
        yield server


def billing_settings(fake: FakeRazorpay, **overrides: Any) -> BillingSettings:
    values: dict[str, Any] = {
        "key_id": KEY_ID,
        "key_secret": KEY_SECRET,
        "webhook_secret": WEBHOOK_SECRET,
        "base_url": fake.url,
        "timeout_s": Decimal(2),
        "usd_inr_rate": Decimal("84.50"),
        "sync_interval_s": Decimal(3600),  # tests run the sync themselves
    }
    values.update(overrides)
    return BillingSettings(**values)


@dataclass
class Billed:
    gateway: Gateway
    fake: FakeRazorpay
    tenant_id: uuid.UUID
    key: str
    sub_id: str
    short_url: str

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.gateway.url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10
        )

    def deliver(self, event: dict[str, Any], event_id: str | None = None) -> httpx.Response:
        return send_webhook(
            self.gateway.url + "/webhooks/razorpay", event, WEBHOOK_SECRET, event_id
        )

    def tenant(self) -> dict[str, Any]:
        with self.admin() as http:
            body: dict[str, Any] = http.get(f"/admin/tenants/{self.tenant_id}").json()
        return body

    def usage(self) -> dict[str, Any]:
        response = httpx.get(self.gateway.url + "/v1/usage", headers={"x-api-key": self.key})
        body: dict[str, Any] = response.json()
        return body


def subscribe(gateway: Gateway, fake: FakeRazorpay, name: str = "acme") -> Billed:
    client = razorpay.Client(auth=(KEY_ID, KEY_SECRET), base_url=fake.url)
    plan = client.plan.create(
        {
            "period": "monthly",
            "interval": 1,
            "item": {"name": "Pro", "amount": 840000, "currency": "INR"},
        }
    )
    with httpx.Client(
        base_url=gateway.url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10
    ) as http:
        assert http.put("/admin/plans/pro", json={"razorpay_plan_id": plan["id"]}).status_code < 300
        tenant = http.post("/admin/tenants", json={"name": name, "plan": "free"}).json()
        key = http.post(f"/admin/tenants/{tenant['id']}/keys", json={}).json()["key"]
        created = http.post(f"/admin/tenants/{tenant['id']}/subscription", json={"plan": "pro"})
    assert created.status_code == 201, created.text
    body = created.json()
    return Billed(
        gateway, fake, uuid.UUID(tenant["id"]), key, body["subscription_id"], body["short_url"]
    )


@pytest.fixture
def billed_factory(
    gateway_factory: Callable[..., Gateway], fake: FakeRazorpay
) -> Callable[..., Billed]:
    def make(**billing_overrides: Any) -> Billed:
        gateway = gateway_factory(
            billing=billing_settings(fake, **billing_overrides), admin_token=ADMIN
        )
        return subscribe(gateway, fake)

    return make


@pytest.fixture
def billed(billed_factory: Callable[..., Billed]) -> Billed:
    return billed_factory()
