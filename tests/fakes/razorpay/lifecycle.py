"""A subscription's life as Razorpay runs it: authentication, billing cycles, charges that
succeed or fail, pauses, updates, the end. Each step emits the webhook event Razorpay would send.

Billing: activation opens the first cycle, due at once. A charge attempt (`charged` or
`pending`) opens the cycle's invoice if it has none: the plan line (times the quantity) plus
every add-on not yet invoiced, which are linked to that invoice (and can no longer be deleted).
After a cycle is paid, the next attempt first moves to the next cycle. The clock moves forward
to when Razorpay would act (a future start, the next cycle's start), never back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from tests.fakes.razorpay import entities
from tests.fakes.razorpay.errors import Json
from tests.fakes.razorpay.events import SUBSCRIPTION_EVENTS, EventQuirks, subscription_event
from tests.fakes.razorpay.store import Store

_FROM: dict[str, tuple[str, ...]] = {
    "authenticated": ("created",),
    "activated": ("created", "authenticated", "pending", "halted"),
    "charged": ("active", "pending", "halted"),
    "pending": ("active", "pending"),
    "halted": ("active", "pending"),
    "cancelled": ("created", "authenticated", "active", "pending", "halted", "paused"),
    "completed": ("active",),
    "paused": ("active",),
    "resumed": ("paused",),
    "updated": ("authenticated", "active"),
}
_WITH_PAYMENT = ("charged", "pending")


class InvalidTransition(ValueError):
    """A test asked for a step Razorpay would not take from the subscription's state."""


def advance(store: Store, sub_id: str, name: str, *, quirks: EventQuirks | None = None) -> Json:
    """Move `sub_id` through `subscription.<name>` and return the event Razorpay would send."""
    if name not in SUBSCRIPTION_EVENTS:
        raise ValueError(f"unknown event {name!r}; one of {', '.join(SUBSCRIPTION_EVENTS)}")
    with store.lock:
        sub = store.subscriptions.get(sub_id)
        if sub is None:
            raise InvalidTransition(f"no subscription {sub_id}")
        if sub["status"] not in _FROM[name]:
            raise InvalidTransition(f"{sub_id} is {sub['status']}; cannot become {name}")
        return apply(store, sub, name, quirks=quirks)


def apply(store: Store, sub: Json, name: str, *, quirks: EventQuirks | None = None) -> Json:
    """Apply a step (already allowed) and record and return its event."""
    payment = _STEPS[name](store, sub)
    return emit(store, sub, name, payment, quirks=quirks)


def emit(
    store: Store,
    sub: Json,
    name: str,
    payment: Json | None = None,
    *,
    quirks: EventQuirks | None = None,
) -> Json:
    quirks = quirks or store.quirks
    if payment is None and quirks.stray_payment:
        payment = latest_payment(store, sub)
    event = subscription_event(
        name,
        account_id=store.account_id,
        subscription=sub,
        payment=payment,
        with_payment=name in _WITH_PAYMENT,
        quirks=quirks,
        now=store.now,
    )
    store.events.append(event)
    return copy.deepcopy(event)


def latest_payment(store: Store, sub: Json) -> Json | None:
    invoice_ids = {i["id"] for i in store.invoices.values() if i["subscription_id"] == sub["id"]}
    made = [p for p in store.payments.values() if p["invoice_id"] in invoice_ids]
    return made[-1] if made else None


def _ensure_customer(store: Store, sub: Json) -> None:
    """Razorpay fills `customer_id` once the customer authorises the mandate."""
    if sub["customer_id"] is None:
        customer = entities.customer(
            name="Fake Customer",
            email=f"customer+{sub['id'].lower()}@example.com",
            contact="+919000090000",
            gstin=None,
            notes={},
            now=store.now,
        )
        store.customers[customer["id"]] = customer
        sub["customer_id"] = customer["id"]


def _authenticate(store: Store, sub: Json) -> None:
    _ensure_customer(store, sub)
    sub["status"] = "authenticated"


def _activate(store: Store, sub: Json) -> None:
    _ensure_customer(store, sub)
    state = store.sub_state[sub["id"]]
    sub["status"] = "active"
    if state.anchor is not None:  # back from pending or halted
        return
    anchor = max(store.now, sub["start_at"] or store.now)
    store.move_clock_to(anchor)
    plan = store.plans[sub["plan_id"]]
    state.anchor = anchor
    sub["start_at"] = sub["start_at"] or anchor
    sub["current_start"] = anchor
    sub["current_end"] = entities.add_periods(anchor, plan["period"], plan["interval"], 1)
    sub["end_at"] = entities.add_periods(
        anchor, plan["period"], plan["interval"], sub["total_count"]
    )
    sub["charge_at"] = anchor


def _open_invoice(store: Store, sub: Json) -> Json:
    state = store.sub_state[sub["id"]]
    if state.open_invoice_id is not None:
        return store.invoices[state.open_invoice_id]
    if sub["remaining_count"] <= 0:
        raise InvalidTransition(f"{sub['id']} has no cycles left to charge; advance 'completed'")
    if state.cancel_at_cycle_end and state.cycle_paid:
        raise InvalidTransition(f"{sub['id']} is cancelled at cycle end; advance 'cancelled'")
    if state.cycle_paid:
        _next_cycle(store, sub)
    plan = store.plans[sub["plan_id"]]
    due = [
        addon
        for addon in store.addons.values()
        if addon["subscription_id"] == sub["id"] and addon["invoice_id"] is None
    ]
    lines = [entities.line_item(plan["item"], sub["quantity"])]
    lines += [entities.line_item(addon["item"], addon["quantity"]) for addon in due]
    invoice = entities.invoice(
        sub=sub,
        customer_entity=store.customers.get(sub["customer_id"]),
        lines=lines,
        short_url="",
        now=store.now,
    )
    invoice["short_url"] = store.short_url(invoice["id"])
    for addon in due:
        addon["invoice_id"] = invoice["id"]
    store.invoices[invoice["id"]] = invoice
    state.open_invoice_id = invoice["id"]
    return invoice


def _next_cycle(store: Store, sub: Json) -> None:
    state = store.sub_state[sub["id"]]
    assert state.anchor is not None
    plan = store.plans[sub["plan_id"]]
    state.cycle += 1
    state.cycle_paid = False
    period, interval = plan["period"], plan["interval"]
    sub["current_start"] = entities.add_periods(state.anchor, period, interval, state.cycle)
    sub["current_end"] = entities.add_periods(state.anchor, period, interval, state.cycle + 1)
    store.move_clock_to(sub["current_start"])
    if state.scheduled:  # an update scheduled for the cycle's end takes effect now
        apply_changes(store, sub, state.scheduled)
        state.scheduled = {}
        emit(store, sub, "updated")


def apply_changes(store: Store, sub: Json, changes: Json) -> None:
    """An update (plan_id, quantity, remaining_count, customer_notify, start_at) taking effect."""
    for name in ("plan_id", "quantity", "customer_notify"):
        if name in changes:
            sub[name] = changes[name]
    anchor = store.sub_state[sub["id"]].anchor
    if "start_at" in changes and anchor is None:  # only before the first cycle
        sub["start_at"] = sub["charge_at"] = changes["start_at"]
    if "remaining_count" in changes:
        sub["remaining_count"] = changes["remaining_count"]
        sub["total_count"] = sub["paid_count"] + changes["remaining_count"]
    if anchor is not None:
        plan = store.plans[sub["plan_id"]]
        total = sub["total_count"]
        sub["end_at"] = entities.add_periods(anchor, plan["period"], plan["interval"], total)
    sub["has_scheduled_changes"] = False
    sub["change_scheduled_at"] = None


def _charge(store: Store, sub: Json) -> Json:
    invoice = _open_invoice(store, sub)
    customer = store.customers.get(sub["customer_id"])
    payment = entities.payment(inv=invoice, customer_entity=customer, captured=True, now=store.now)
    store.payments[payment["id"]] = payment
    invoice.update(
        status="paid",
        payment_id=payment["id"],
        paid_at=store.now,
        amount_paid=invoice["amount"],
        amount_due=0,
    )
    state = store.sub_state[sub["id"]]
    state.cycle_paid = True
    state.open_invoice_id = None
    sub["status"] = "active"
    sub["paid_count"] += 1
    sub["remaining_count"] -= 1
    sub["auth_attempts"] = 0
    sub["charge_at"] = sub["current_end"] if sub["remaining_count"] > 0 else None
    return payment


def _fail_charge(store: Store, sub: Json) -> Json:
    invoice = _open_invoice(store, sub)
    customer = store.customers.get(sub["customer_id"])
    payment = entities.payment(inv=invoice, customer_entity=customer, captured=False, now=store.now)
    store.payments[payment["id"]] = payment
    sub["status"] = "pending"
    sub["auth_attempts"] += 1
    sub["charge_at"] = store.now + 86_400  # Razorpay retries the card
    return payment


def _halt(store: Store, sub: Json) -> None:
    sub["status"] = "halted"


def _cancel(store: Store, sub: Json) -> None:
    state = store.sub_state[sub["id"]]
    if state.cancel_at_cycle_end:
        store.move_clock_to(sub["current_end"])
        state.cancel_at_cycle_end = False
    sub["status"] = "cancelled"
    sub["ended_at"] = store.now


def _complete(store: Store, sub: Json) -> None:
    store.move_clock_to(sub["current_end"])
    sub["status"] = "completed"
    sub["ended_at"] = store.now
    sub["charge_at"] = None


def _pause(store: Store, sub: Json) -> None:
    sub.update(status="paused", paused_at=store.now, pause_initiated_by="self", charge_at=None)


def _resume(store: Store, sub: Json) -> None:
    sub.pop("paused_at", None)
    sub.pop("pause_initiated_by", None)
    sub["status"] = "active"
    sub["charge_at"] = sub["current_end"]


def _update(store: Store, sub: Json) -> None:
    state = store.sub_state[sub["id"]]
    if state.scheduled:
        apply_changes(store, sub, state.scheduled)
        state.scheduled = {}


_STEPS: dict[str, Callable[[Store, Json], Json | None]] = {
    "authenticated": _authenticate,
    "activated": _activate,
    "charged": _charge,
    "pending": _fail_charge,
    "halted": _halt,
    "cancelled": _cancel,
    "completed": _complete,
    "paused": _pause,
    "resumed": _resume,
    "updated": _update,
}
