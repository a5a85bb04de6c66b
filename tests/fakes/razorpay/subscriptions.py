"""The subscription endpoints: create, cancel, update, pause, resume.

Changes made through the API emit the same webhook events as `advance()` (they land in
`FakeRazorpay.events`), as Razorpay sends `subscription.cancelled` after an API cancel.
"""

from __future__ import annotations

from tests.fakes.razorpay import entities, lifecycle
from tests.fakes.razorpay.errors import (
    ApiError,
    Json,
    as_bool,
    as_int,
    notes,
    required_int,
    required_str,
)
from tests.fakes.razorpay.resources import TERMINAL, parse_item
from tests.fakes.razorpay.store import Store, SubState, find, snapshot

_CREATE_FIELDS = (
    "plan_id",
    "total_count",
    "quantity",
    "customer_id",
    "customer_notify",
    "start_at",
    "expire_by",
    "addons",
    "offer_id",
    "notes",
)
_UPDATE_FIELDS = (
    "plan_id",
    "offer_id",
    "quantity",
    "remaining_count",
    "start_at",
    "schedule_change_at",
    "customer_notify",
)
# Razorpay supports subscriptions of up to 100 years.
_MAX_CYCLES = {"daily": 36_500, "weekly": 5_200, "monthly": 1_200, "quarterly": 400, "yearly": 100}


def create_subscription(store: Store, body: Json) -> Json:
    store.check_fields(body, _CREATE_FIELDS)
    plan_id = required_str(body, "plan_id")
    total_count = required_int(body, "total_count", minimum=1)
    quantity = as_int(body, "quantity", default=1, minimum=1)
    start_at = as_int(body, "start_at")
    expire_by = as_int(body, "expire_by")
    customer_notify = as_bool(body, "customer_notify", default=True)
    sub_notes = notes(body)
    if body.get("offer_id") is not None:
        raise ApiError("Offer Not Found", field="offer_id")
    assert quantity is not None
    with store.lock:
        plan = find(store.plans, plan_id)
        customer_id = body.get("customer_id")
        if customer_id is not None:
            customer_id = find(store.customers, str(customer_id))["id"]
        _check_times(store, start_at, expire_by)
        limit = _MAX_CYCLES[plan["period"]] // plan["interval"]
        if total_count > limit:
            raise ApiError(f"The total count may not be greater than {limit}.", field="total_count")
        upfront = _upfront_items(store, body.get("addons"), plan["item"]["currency"])
        sub_id = entities.new_id("sub")
        start = start_at if start_at is not None else store.now
        sub = entities.subscription(
            sub_id=sub_id,
            plan_id=plan_id,
            customer_id=customer_id,
            total_count=total_count,
            quantity=quantity,
            notes=sub_notes,
            customer_notify=customer_notify,
            start_at=start_at,
            end_at=entities.add_periods(start, plan["period"], plan["interval"], total_count),
            expire_by=expire_by,
            short_url=store.short_url(sub_id),
            now=store.now,
        )
        store.subscriptions[sub_id] = sub
        store.sub_state[sub_id] = SubState()
        for item in upfront:
            addon = entities.addon(sub_id=sub_id, addon_item=item, quantity=1, now=store.now)
            store.addons[addon["id"]] = addon
        return snapshot(sub)


def _check_times(store: Store, start_at: int | None, expire_by: int | None) -> None:
    if start_at is not None and start_at < store.now:
        raise ApiError("start_at cannot be lesser than the current time.", field="start_at")
    if expire_by is not None and expire_by <= store.now:
        raise ApiError("expire_by cannot be lesser than the current time.", field="expire_by")


def _upfront_items(store: Store, raw: object, currency: str) -> list[Json]:
    """`addons` at creation: amounts collected with the authorisation payment."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ApiError("The addons must be an array.", field="addons")
    items = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise ApiError("The addons must be an array.", field="addons")
        store.check_fields(entry, ("item",))
        items.append(parse_item(store, entry.get("item"), kind="addon", currency=currency))
    return items


def cancel_subscription(store: Store, sub_id: str, body: Json) -> Json:
    store.check_fields(body, ("cancel_at_cycle_end",))
    at_cycle_end = as_bool(body, "cancel_at_cycle_end", default=False)
    with store.lock:
        sub = find(store.subscriptions, sub_id)
        status = sub["status"]
        if status in TERMINAL:
            raise ApiError(f"Subscription is not cancellable in {status} status.", field="status")
        state = store.sub_state[sub_id]
        if not at_cycle_end:
            state.cancel_at_cycle_end = False
            lifecycle.apply(store, sub, "cancelled")
            return snapshot(sub)
        if status != "active":
            raise ApiError("Subscription cannot be cancelled since no billing cycle is going on")
        if sub["remaining_count"] == 0:
            raise ApiError(
                "Subscription cannot be cancelled at cycle end since the last cycle is going on "
                "already."
            )
        state.cancel_at_cycle_end = True
        return snapshot(sub)


def _parse_update(store: Store, body: Json) -> tuple[Json, str]:
    store.check_fields(body, _UPDATE_FIELDS)
    if body.get("offer_id") is not None:
        raise ApiError("Offer Not Found", field="offer_id")
    changes: Json = {}
    if "plan_id" in body:
        changes["plan_id"] = find(store.plans, required_str(body, "plan_id"))["id"]
    for name in ("quantity", "remaining_count"):
        if name in body:
            changes[name] = required_int(body, name, minimum=1)
    if "customer_notify" in body:
        changes["customer_notify"] = as_bool(body, "customer_notify", default=True)
    if "start_at" in body:
        changes["start_at"] = required_int(body, "start_at", minimum=store.now)
    when = body.get("schedule_change_at", "now")
    if when not in ("now", "cycle_end"):
        raise ApiError("The selected schedule change at is invalid.", field="schedule_change_at")
    return changes, str(when)


def update_subscription(store: Store, sub_id: str, body: Json) -> Json:
    """`schedule_change_at`: "now" (default) applies at once; "cycle_end" when the cycle ends."""
    with store.lock:
        changes, when = _parse_update(store, body)
        sub = find(store.subscriptions, sub_id)
        if sub["status"] not in ("authenticated", "active"):
            raise ApiError(
                "Can't update Subscription when Subscription is not in Authenticated or Active "
                "state"
            )
        if when == "now":
            lifecycle.apply_changes(store, sub, changes)
            lifecycle.emit(store, sub, "updated")
            return snapshot(sub)
        store.sub_state[sub_id].scheduled.update(changes)
        sub["has_scheduled_changes"] = True
        sub["change_scheduled_at"] = sub["current_end"] or sub["charge_at"]
        return snapshot(sub)


def scheduled_changes(store: Store, sub_id: str) -> Json:
    """The subscription as it will be once its scheduled update applies."""
    with store.lock:
        sub = find(store.subscriptions, sub_id)
        preview = snapshot(sub)
        preview.update(store.sub_state[sub_id].scheduled)
        return preview


def cancel_scheduled_changes(store: Store, sub_id: str) -> Json:
    with store.lock:
        sub = find(store.subscriptions, sub_id)
        store.sub_state[sub_id].scheduled = {}
        sub["has_scheduled_changes"] = False
        sub["change_scheduled_at"] = None
        return snapshot(sub)


def pause_subscription(store: Store, sub_id: str, body: Json) -> Json:
    """Only an active subscription pauses; pausing an authenticated one cancels it."""
    store.check_fields(body, ("pause_at",))
    if body.get("pause_at", "now") != "now":
        raise ApiError("The selected pause at is invalid.", field="pause_at")
    with store.lock:
        sub = find(store.subscriptions, sub_id)
        if sub["status"] == "authenticated":
            lifecycle.apply(store, sub, "cancelled")
        elif sub["status"] == "active":
            lifecycle.apply(store, sub, "paused")
        else:
            raise ApiError(
                f"Subscription cannot be paused in {sub['status']} status", field="status"
            )
        return snapshot(sub)


def resume_subscription(store: Store, sub_id: str, body: Json) -> Json:
    store.check_fields(body, ("resume_at",))
    if body.get("resume_at", "now") != "now":
        raise ApiError("The selected resume at is invalid.", field="resume_at")
    with store.lock:
        sub = find(store.subscriptions, sub_id)
        if sub["status"] != "paused":
            raise ApiError(
                f"Subscription cannot be resumed in {sub['status']} status", field="status"
            )
        lifecycle.apply(store, sub, "resumed")
        return snapshot(sub)
