"""Budget alerts: a threshold crossed by a settle queues one event per subject (the tenant, and
the end user against their own budget); the sender POSTs it signed, retries a failed delivery
with the same event, and a threshold never fires twice in a period."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.admin.helpers import MESSAGES, MODEL, assert_error
from tests.alerts.receiver import Receiver, receiver
from tests.support import Gateway, TenantKey, settled_rows, wait_until


def verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    """What a receiver does: recompute v1 over the raw body and compare in constant time."""
    value = {k.lower(): v for k, v in headers.items()}["tollgate-signature"]
    parts = dict(item.split("=", 1) for item in value.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], expected.hexdigest())


async def _ask(gateway: Gateway, key: str, user: str) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(
            "/v1/messages",
            headers={"x-api-key": key},
            json={
                "model": MODEL,
                "max_tokens": 5,
                "messages": MESSAGES,
                "metadata": {"user_id": user},
            },
        )
    assert response.status_code == 200, response.text


def _delivered(hook: Receiver) -> dict[str, list[dict[str, Any]]]:
    by_id: dict[str, list[dict[str, Any]]] = {}
    for call in hook.calls:
        event = json.loads(call.body)
        by_id.setdefault(event["id"], []).append({"event": event, "call": call})
    return by_id


async def test_a_failed_delivery_is_retried_with_the_same_signed_event_once_per_threshold(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    tid = tenant.tenant_id
    assert (
        await admin.patch(f"/admin/tenants/{tid}", json={"monthly_budget_usd": "0.0024"})
    ).status_code == 200
    limit = await admin.put(
        f"/admin/tenants/{tid}/users/alice/limit", json={"monthly_budget_usd": "0.0024"}
    )
    assert limit.status_code == 200
    with receiver(fail_first=1) as hook:
        put = await admin.put(
            f"/admin/tenants/{tid}/alerts", json={"url": hook.url, "thresholds": [1]}
        )
        assert put.status_code == 200, put.text
        secret = put.json()["secret"]
        assert put.json()["thresholds"] == [1] and secret.startswith("whsec_")
        await _ask(admin_gateway, tenant.key, "alice")  # crosses 1% of both budgets

        async def both_delivered() -> bool:
            got = _delivered(hook)
            return len(got) == 2 and all(
                any(d["call"].answered == 200 for d in v) for v in got.values()
            )

        await wait_until(both_delivered, timeout_s=60)
        got = _delivered(hook)
        retried = [v for v in got.values() if len(v) == 2]
        assert len(retried) == 1  # the first attempt failed (500) and came again
        first, second = retried[0]
        assert (first["call"].answered, second["call"].answered) == (500, 200)
        assert first["call"].body == second["call"].body  # same event, same bytes
        for deliveries in got.values():
            for d in deliveries:
                verify(secret, d["call"].headers, d["call"].body)
        events = {d[0]["event"]["user"]: d[0]["event"] for d in got.values()}
        assert set(events) == {None, "alice"}
        tenant_event = events[None]
        assert tenant_event["type"] == "budget.threshold" and tenant_event["threshold_pct"] == 1
        assert tenant_event["tenant_id"] == str(tid) and tenant_event["limit_usd"] == "0.0024"
        assert set(tenant_event) == {
            "id", "type", "tenant_id", "user", "threshold_pct", "period_start", "period_end",
            "limit_usd", "spent_usd", "created_at",
        }  # fmt: skip

        await _ask(admin_gateway, tenant.key, "alice")  # spends more: no threshold fires again
        await settled_rows(engine, 2)
        listed = (await admin.get(f"/admin/tenants/{tid}/alerts/deliveries")).json()["data"]
        assert len(listed) == 2
        attempts = sorted(d["attempts"] for d in listed)
        assert attempts == [1, 2] and all(d["delivered_at"] for d in listed)
        assert {d["last_status"] for d in listed} == {200}
        assert len(hook.calls) == 3
    audit = (await admin.get("/admin/audit", params={"action": "alerts.set"})).json()["data"]
    assert audit and secret not in json.dumps(audit)


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://127.0.0.1/hook"},
        {"url": "not a url"},
        {"url": "http://127.0.0.1/hook", "thresholds": []},
        {"url": "http://127.0.0.1/hook", "thresholds": [0]},
        {"thresholds": [50]},
    ],
)
async def test_bad_alert_settings_are_400(
    admin: httpx.AsyncClient, tenant: TenantKey, body: dict[str, Any]
) -> None:
    response = await admin.put(f"/admin/tenants/{tenant.tenant_id}/alerts", json=body)
    assert_error(response, 400, "invalid_request_error")


async def test_alert_settings_default_thresholds_and_a_kept_secret(
    admin: httpx.AsyncClient, tenant: TenantKey
) -> None:
    url = f"/admin/tenants/{tenant.tenant_id}/alerts"
    assert (await admin.get(url)).json() == {"url": None, "thresholds": [50, 80, 100]}
    first = (await admin.put(url, json={"url": "https://example.test/a"})).json()
    assert first["thresholds"] == [50, 80, 100]
    second = (
        await admin.put(url, json={"url": "https://example.test/b", "thresholds": [90, 10]})
    ).json()
    assert second["secret"] == first["secret"] and second["thresholds"] == [10, 90]
    assert (await admin.get(url)).json() == {
        "url": "https://example.test/b",
        "thresholds": [10, 90],
    }
