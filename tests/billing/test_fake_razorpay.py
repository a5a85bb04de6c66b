"""The fake Razorpay, driven through the official `razorpay` SDK, and its signed webhooks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import razorpay
import requests
from razorpay.errors import BadRequestError, GatewayError, ServerError, SignatureVerificationError

from tests.fakes.razorpay import (
    EventQuirks,
    FakeRazorpay,
    InvalidTransition,
    send_duplicate,
    send_reserialized,
    send_webhook,
    serialize,
    sign,
    start_fake_razorpay,
)

KEY_ID, KEY_SECRET, WEBHOOK_SECRET = "rzp_test_fake", "fake_key_secret", "whsec_fake"
T0 = 1_767_225_600  # 2026-01-01 00:00 UTC
SUB_FIELDS = {
    "id": str, "entity": str, "plan_id": str, "customer_id": str, "status": str,
    "current_start": (int, type(None)), "current_end": (int, type(None)),
    "ended_at": (int, type(None)), "quantity": int, "notes": (dict, list), "charge_at": int,
    "start_at": (int, type(None)), "end_at": int, "auth_attempts": int, "total_count": int,
    "paid_count": int, "remaining_count": int, "customer_notify": bool, "created_at": int,
    "expire_by": (int, type(None)), "short_url": str, "has_scheduled_changes": bool,
    "change_scheduled_at": (int, type(None)), "source": str, "offer_id": (str, type(None)),
}  # fmt: skip
PAYMENT_FIELDS = {"id", "entity", "amount", "currency", "status", "order_id", "invoice_id"} | {
    "method", "captured", "customer_id", "notes", "fee", "tax", "created_at",
}  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[FakeRazorpay]:
    with start_fake_razorpay(KEY_ID, KEY_SECRET, now=T0) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeRazorpay) -> FakeRazorpay:
    server.reset()
    server.now = T0
    server.quirks = EventQuirks()
    return server


@pytest.fixture
def client(fake: FakeRazorpay) -> razorpay.Client:
    return razorpay.Client(auth=(KEY_ID, KEY_SECRET), base_url=fake.url)


def make_subscription(client: razorpay.Client, **extra: Any) -> Any:
    item = {"name": "Pro", "amount": 99_900, "currency": "INR"}
    plan = client.plan.create({"period": "monthly", "interval": 1, "item": item})
    customer = client.customer.create(
        {"name": "Asha", "email": "asha@example.com", "fail_existing": "0"}
    )
    body = {"plan_id": plan["id"], "total_count": 12, "customer_id": customer["id"], **extra}
    return client.subscription.create(body)


def add_on(client: razorpay.Client, sub_id: str, amount: int, marker: str, **opts: Any) -> Any:
    item = {"name": "Overage", "amount": amount, "currency": "INR", "description": marker}
    return client.subscription.createAddon(sub_id, {"item": item, "quantity": 1}, **opts)


def test_create_plan_customer_subscription_with_every_documented_field(client: Any) -> None:
    sub = make_subscription(client, notes={"tenant": "t_1"})
    assert [k for k, t in SUB_FIELDS.items() if not isinstance(sub[k], t)] == []
    assert sub["id"].startswith("sub_") and sub["entity"] == "subscription"
    assert (sub["status"], sub["paid_count"], sub["remaining_count"]) == ("created", 0, 12)
    assert sub["current_start"] is None and sub["ended_at"] is None and sub["source"] == "api"
    assert sub["notes"] == {"tenant": "t_1"} and sub["created_at"] == T0
    assert sub["short_url"].endswith("/pay/" + sub["id"])
    plan = client.plan.fetch(sub["plan_id"])
    assert plan["entity"] == "plan" and plan["item"]["amount"] == 99_900
    assert client.customer.fetch(sub["customer_id"])["email"] == "asha@example.com"
    assert make_subscription(client)["notes"] == []  # empty notes, as Razorpay renders them


def test_fetch_and_all_page_newest_first(fake: FakeRazorpay, client: Any) -> None:
    subs = []
    for _ in range(3):
        subs.append(make_subscription(client)["id"])
        fake.tick(10)
    assert client.subscription.fetch(subs[0])["id"] == subs[0]
    page = client.subscription.all({"count": 2, "skip": 1})
    assert page["entity"] == "collection" and page["count"] == 2
    assert [s["id"] for s in page["items"]] == [subs[1], subs[0]]
    with pytest.raises(BadRequestError, match="The id provided does not exist"):
        client.subscription.fetch("sub_doesnotexist00")


def test_cancel_ends_the_subscription_once(fake: FakeRazorpay, client: Any) -> None:
    sub = make_subscription(client)
    cancelled = client.subscription.cancel(sub["id"], {"cancel_at_cycle_end": False})
    assert cancelled["status"] == "cancelled" and cancelled["ended_at"] == T0
    assert fake.events[-1]["event"] == "subscription.cancelled"
    with pytest.raises(BadRequestError, match="not cancellable in cancelled status"):
        client.subscription.cancel(sub["id"])


def test_cancel_at_cycle_end_waits_for_the_cycle(fake: FakeRazorpay, client: Any) -> None:
    sub = make_subscription(client)
    with pytest.raises(BadRequestError, match="no billing cycle"):
        client.subscription.cancel(sub["id"], {"cancel_at_cycle_end": True})
    for step in ("activated", "charged"):
        fake.advance(sub["id"], step)
    assert client.subscription.cancel(sub["id"], {"cancel_at_cycle_end": 1})["status"] == "active"
    with pytest.raises(InvalidTransition):
        fake.advance(sub["id"], "charged")
    ended = fake.advance(sub["id"], "cancelled")["payload"]["subscription"]["entity"]
    assert ended["status"] == "cancelled" and ended["ended_at"] == ended["current_end"]


def test_edit_now_or_at_cycle_end(fake: FakeRazorpay, client: Any) -> None:
    sub = make_subscription(client)
    with pytest.raises(BadRequestError, match="not in Authenticated or Active"):
        client.subscription.edit(sub["id"], {"quantity": 2})
    fake.advance(sub["id"], "activated")
    assert client.subscription.edit(sub["id"], {"quantity": 2})["quantity"] == 2
    later = client.subscription.edit(sub["id"], {"quantity": 3, "schedule_change_at": "cycle_end"})
    assert later["quantity"] == 2 and later["has_scheduled_changes"] is True
    fake.advance(sub["id"], "charged")
    charged = fake.advance(sub["id"], "charged")  # the next cycle starts with the new quantity
    assert charged["payload"]["payment"]["entity"]["amount"] == 3 * 99_900
    assert [e["event"] for e in fake.events].count("subscription.updated") == 2


def test_pause_and_resume_through_the_api(fake: FakeRazorpay, client: Any) -> None:
    sub = make_subscription(client)
    fake.advance(sub["id"], "activated")
    paused = client.subscription.pause(sub["id"], {"pause_at": "now"})
    assert paused["status"] == "paused" and paused["charge_at"] is None
    assert client.subscription.resume(sub["id"], {"resume_at": "now"})["status"] == "active"
    assert [e["event"] for e in fake.events[-2:]] == [
        "subscription.paused",
        "subscription.resumed",
    ]


def test_addon_create_fetch_all_delete(fake: FakeRazorpay, client: Any) -> None:
    sub = make_subscription(client)
    first = add_on(client, sub["id"], 500, "tollgate:usage:1")
    fake.tick(60)
    second = add_on(client, sub["id"], 700, "tollgate:usage:2")
    assert first["id"].startswith("ao_") and first["entity"] == "addon"
    assert first["item"]["id"].startswith("item_") and first["item"]["type"] == "addon"
    assert first["item"]["description"] == "tollgate:usage:1" and first["invoice_id"] is None
    assert client.addon.fetch(first["id"]) == first
    listed = client.addon.all({"subscription_id": sub["id"], "count": 10})
    assert [a["id"] for a in listed["items"]] == [second["id"], first["id"]]
    assert client.addon.all({"from": T0 + 1, "to": T0 + 60})["items"] == [second]
    assert client.addon.all({"count": 1, "skip": 1})["items"] == [first]
    assert client.addon.delete(first["id"]) == []
    with pytest.raises(BadRequestError, match="does not exist"):
        client.addon.fetch(first["id"])


def test_addon_is_invoiced_at_the_next_charge_and_then_undeletable(
    fake: FakeRazorpay, client: Any
) -> None:
    sub = make_subscription(client)
    fake.advance(sub["id"], "activated")
    addon = add_on(client, sub["id"], 2_500, "tollgate:usage:7")
    event = fake.advance(sub["id"], "charged")
    payment = event["payload"]["payment"]["entity"]
    assert payment["amount"] == 99_900 + 2_500 and payment["status"] == "captured"
    invoiced = client.addon.fetch(addon["id"])
    assert invoiced["invoice_id"] == payment["invoice_id"]
    with pytest.raises(BadRequestError, match="Delete operation cannot be performed"):
        client.addon.delete(addon["id"])
    invoices = client.invoice.all({"subscription_id": sub["id"]})
    assert invoices["count"] == 1 and invoices["items"][0]["status"] == "paid"
    lines = invoices["items"][0]["line_items"]
    assert [(li["type"], li["amount"], li["description"]) for li in lines] == [
        ("plan", 99_900, None),
        ("addon", 2_500, "tollgate:usage:7"),
    ]
    # The next cycle bills the plan alone.
    assert fake.advance(sub["id"], "charged")["payload"]["payment"]["entity"]["amount"] == 99_900


def test_addon_input_is_checked_like_razorpay(client: Any) -> None:
    sub = make_subscription(client)
    item = {"name": "Overage", "amount": 500, "currency": "INR"}
    with pytest.raises(BadRequestError, match="notes is/are not required"):
        client.subscription.createAddon(sub["id"], {"item": item, "notes": {"k": "v"}})
    with pytest.raises(BadRequestError, match="The amount must be at least 100"):
        client.subscription.createAddon(sub["id"], {"item": {**item, "amount": 99}})
    with pytest.raises(BadRequestError, match="quantity may not be greater than 10"):
        client.subscription.createAddon(sub["id"], {"item": item, "quantity": 11})
    client.subscription.cancel(sub["id"])
    with pytest.raises(BadRequestError, match="terminal state"):
        client.subscription.createAddon(sub["id"], {"item": item})


def test_wrong_or_missing_key_is_a_401_bad_request_error(fake: FakeRazorpay) -> None:
    wrong = razorpay.Client(auth=(KEY_ID, "not-the-secret"), base_url=fake.url)
    with pytest.raises(BadRequestError, match="The api key provided is invalid"):
        wrong.plan.all()
    response = requests.get(fake.url + "/v1/plans", timeout=5)
    assert response.status_code == 401
    error = response.json()["error"]
    assert set(error) == {"code", "description", "source", "step", "reason", "metadata", "field"}
    assert error["code"] == "BAD_REQUEST_ERROR"


def test_injected_failures_raise_the_sdk_error_for_their_code(
    fake: FakeRazorpay, client: Any
) -> None:
    fake.fail_next(1, status=500)
    fake.fail_next(1, status=502)
    fake.fail_next(1, status=504, html=True)
    with pytest.raises(ServerError):
        client.plan.all()
    with pytest.raises(GatewayError):
        client.plan.all()
    with pytest.raises(requests.exceptions.JSONDecodeError):  # an HTML page from the edge
        client.plan.all()
    assert client.plan.all()["count"] == 0
    assert [c.status for c in fake.calls] == [500, 502, 504, 200]


def test_a_lost_response_still_creates_the_addon(fake: FakeRazorpay, client: Any) -> None:
    sub = make_subscription(client)
    fake.fail_next(1, status=504, applied=True)
    with pytest.raises(GatewayError):
        add_on(client, sub["id"], 500, "tollgate:usage:9")
    fake.delay_next(1, 1.5)
    with pytest.raises(requests.exceptions.Timeout):
        add_on(client, sub["id"], 500, "tollgate:usage:10", timeout=0.5)
    assert len(fake.calls_to("POST", "/v1/subscriptions/*/addons")) == 2
    descriptions = [a["item"]["description"] for a in fake.addons_of(sub["id"])]
    assert descriptions == ["tollgate:usage:9", "tollgate:usage:10"]


def test_delay_times_out_an_sdk_call(fake: FakeRazorpay, client: Any) -> None:
    sub = make_subscription(client)
    fake.delay_next(1, 1.5)
    with pytest.raises(requests.exceptions.Timeout):
        client.subscription.fetch(sub["id"], timeout=0.5)
    assert client.subscription.fetch(sub["id"], timeout=0.5)["id"] == sub["id"]


def test_malformed_answers(fake: FakeRazorpay, client: Any) -> None:
    fake.malformed_next(1, "html")
    fake.malformed_next(1, "truncated")
    fake.malformed_next(1, "wrong_shape")
    for _ in range(2):
        with pytest.raises(requests.exceptions.JSONDecodeError):
            client.plan.all()
    assert "items" not in client.plan.all()


def test_lifecycle_events_have_the_documented_shape(fake: FakeRazorpay, client: Any) -> None:
    sub = make_subscription(client)
    steps = ["authenticated", "activated", "charged", "pending", "charged", "charged"]
    events = []
    for step in [*steps, "paused", "resumed", "updated", "pending", "halted", "cancelled"]:
        events.append(event := fake.advance(sub["id"], step))
        assert set(event) == {"entity", "account_id", "event", "contains", "payload", "created_at"}
        assert event["entity"] == "event" and event["event"] == f"subscription.{step}"
        assert event["account_id"].startswith("acc_") and isinstance(event["created_at"], int)
        entity = event["payload"]["subscription"]["entity"]
        assert set(SUB_FIELDS) | {"type"} <= set(entity) and entity["type"] == 2
        with_payment = step in ("charged", "pending")
        assert event["contains"] == (
            ["subscription", "payment"] if with_payment else ["subscription"]
        )
        assert ("payment" in event["payload"]) is with_payment
        if with_payment:
            assert set(event["payload"]["payment"]["entity"]) >= PAYMENT_FIELDS
    subs = [e["payload"]["subscription"]["entity"] for e in events]
    # The first charge pays the first cycle; a failed attempt opens the next one, its retry
    # pays it, and the charge after that moves on to a third cycle.
    assert [(s["paid_count"], s["remaining_count"]) for s in subs[2:6]] == [
        (1, 11), (1, 11), (2, 10), (3, 9),
    ]  # fmt: skip
    starts = [s["current_start"] for s in subs[1:6]]
    assert starts[0] == starts[1] == T0 < starts[2] == starts[3] < starts[4]
    assert subs[5]["charge_at"] == subs[5]["current_end"] and subs[3]["auth_attempts"] == 1
    failed = events[3]["payload"]["payment"]["entity"]
    assert failed["status"] == "failed" and failed["captured"] is False
    assert events[2]["payload"]["payment"]["entity"]["captured"] is True
    assert [s["status"] for s in subs[6:]] == [
        "paused", "active", "active", "pending", "halted", "cancelled",
    ]  # fmt: skip


def test_cycles_run_out_then_the_subscription_completes(fake: FakeRazorpay, client: Any) -> None:
    sub = make_subscription(client)
    fake.advance(sub["id"], "activated")
    client.subscription.edit(sub["id"], {"remaining_count": 2})
    fake.advance(sub["id"], "charged")
    fake.advance(sub["id"], "charged")
    with pytest.raises(InvalidTransition, match="no cycles left"):
        fake.advance(sub["id"], "charged")
    done = fake.advance(sub["id"], "completed")["payload"]["subscription"]["entity"]
    assert done["status"] == "completed" and done["ended_at"] == done["current_end"]
    with pytest.raises(InvalidTransition):
        fake.advance(sub["id"], "activated")


def test_documented_quirks_are_options(fake: FakeRazorpay, client: Any) -> None:
    sub = make_subscription(client)
    fake.advance(sub["id"], "activated")
    quirky = EventQuirks(captured="1", empty_notes="dict", created_at_in_payload=True)
    charged = fake.advance(sub["id"], "charged", quirks=quirky)
    payment = charged["payload"]["payment"]["entity"]
    assert payment["captured"] == "1" and payment["notes"] == {}
    assert "created_at" not in charged and isinstance(charged["payload"]["created_at"], int)
    fake.quirks = EventQuirks(stray_payment=True)
    paused = fake.advance(sub["id"], "paused")
    assert paused["contains"] == ["subscription"]
    assert paused["payload"]["payment"]["entity"]["id"] == payment["id"]


def test_sign_matches_the_sdk_verifier(client: Any) -> None:
    body = serialize({"entity": "event", "payload": {"url": "https://rzp.io/i/x", "n": "é"}})
    assert b"https:\\/\\/rzp.io" in body and b"\\u00e9" in body  # PHP's json_encode
    assert client.utility.verify_webhook_signature(body.decode(), sign(body, "s3"), "s3")
    with pytest.raises(SignatureVerificationError):
        client.utility.verify_webhook_signature(
            json.dumps(json.loads(body)), sign(body, "s3"), "s3"
        )


Received = list[tuple[bytes, dict[str, str]]]


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((body, dict(self.headers)))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    """A throwaway webhook endpoint recording each delivery's raw body and headers."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    httpd.received = received = []  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/webhooks/razorpay", received
    httpd.shutdown()
    httpd.server_close()


def verified(client: Any, body: bytes, headers: dict[str, str]) -> bool:
    signature = headers["X-Razorpay-Signature"]
    return bool(client.utility.verify_webhook_signature(body.decode(), signature, WEBHOOK_SECRET))


def test_send_webhook_delivers_the_signed_raw_bytes(
    fake: FakeRazorpay, client: Any, receiver: tuple[str, Received]
) -> None:
    url, received = receiver
    event = fake.advance(make_subscription(client)["id"], "authenticated")
    assert send_webhook(url, event, WEBHOOK_SECRET, "evt_fixed").status_code == 200
    [(body, headers)] = received
    assert body == serialize(event) and json.loads(body) == event
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Razorpay-Event-Id"] == "evt_fixed" and verified(client, body, headers)


def test_duplicates_and_reserialized_bodies(
    fake: FakeRazorpay, client: Any, receiver: tuple[str, Received]
) -> None:
    url, received = receiver
    event = fake.advance(make_subscription(client)["id"], "authenticated")
    send_duplicate(url, event, WEBHOOK_SECRET, times=2)
    (first, first_headers), (again, again_headers) = received
    assert first == again and first_headers["X-Razorpay-Event-Id"].startswith("evt_")
    assert first_headers["X-Razorpay-Event-Id"] == again_headers["X-Razorpay-Event-Id"]
    send_reserialized(url, event, WEBHOOK_SECRET, style="reordered")
    send_reserialized(url, event, WEBHOOK_SECRET, style="pretty", resign=True)
    (stale, stale_headers), (resigned, resigned_headers) = received[2:]
    assert stale != first and json.loads(stale) == event
    assert stale_headers["X-Razorpay-Signature"] == first_headers["X-Razorpay-Signature"]
    with pytest.raises(SignatureVerificationError):  # a raw-bytes verifier rejects it
        verified(client, stale, stale_headers)
    assert verified(client, resigned, resigned_headers)
