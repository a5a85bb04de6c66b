"""Plans, customers, add-ons and invoices: the API operations the fake serves for them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.fakes.razorpay import entities
from tests.fakes.razorpay.errors import (
    ApiError,
    Json,
    as_bool,
    as_int,
    as_str,
    notes,
    required_int,
    required_str,
)
from tests.fakes.razorpay.store import Store, collection, find, snapshot

TERMINAL = ("cancelled", "completed", "expired")
ITEM_FIELDS = ("name", "description", "amount", "unit_amount", "currency")


def parse_item(store: Store, raw: object, *, kind: str, currency: str | None = None) -> Json:
    """An item as plans and add-ons take it: a name, at least 100 paise, and INR."""
    if not isinstance(raw, dict):
        raise ApiError("The item field is required.", field="item")
    store.check_fields(raw, ITEM_FIELDS)
    name = required_str(raw, "name")
    description = as_str(raw, "description", max_len=2048)
    amount = as_int(raw, "amount", minimum=100)
    if amount is None:
        amount = required_int(raw, "unit_amount", minimum=100)
    item_currency = required_str(raw, "currency", max_len=3)
    if item_currency != "INR":
        raise ApiError("The selected currency is invalid.", field="currency")
    if currency is not None and item_currency != currency:
        raise ApiError("Addon currency should be same as that of the plan", field="currency")
    return entities.item(
        name=name,
        amount=amount,
        currency=item_currency,
        description=description,
        kind=kind,
        now=store.now,
    )


def create_plan(store: Store, body: Json) -> Json:
    store.check_fields(body, ("period", "interval", "item", "notes"))
    period = required_str(body, "period")
    if period not in entities.PERIODS:
        raise ApiError("The selected period is invalid.", field="period")
    interval = required_int(body, "interval", minimum=1)
    if period == "daily" and interval < 7:
        raise ApiError("The interval must be at least 7 for daily plans.", field="interval")
    plan_notes = notes(body)
    with store.lock:
        plan_item = parse_item(store, body.get("item"), kind="plan")
        plan = entities.plan(
            period=period, interval=interval, plan_item=plan_item, notes=plan_notes, now=store.now
        )
        store.plans[plan["id"]] = plan
        return snapshot(plan)


def create_customer(store: Store, body: Json) -> Json:
    """`fail_existing` (default true): an existing email+contact is an error, else returned."""
    store.check_fields(body, ("name", "email", "contact", "fail_existing", "gstin", "notes"))
    name = as_str(body, "name", max_len=50)
    email = as_str(body, "email", max_len=64)
    contact = as_str(body, "contact", max_len=15)
    gstin = as_str(body, "gstin", max_len=15)
    fail_existing = as_bool(body, "fail_existing", default=True)
    customer_notes = notes(body)
    with store.lock:
        for existing in store.customers.values():
            if (email or contact) and (existing["email"], existing["contact"]) == (email, contact):
                if fail_existing:
                    raise ApiError("Customer already exists for the merchant")
                return snapshot(existing)
        customer = entities.customer(
            name=name,
            email=email,
            contact=contact,
            gstin=gstin,
            notes=customer_notes,
            now=store.now,
        )
        store.customers[customer["id"]] = customer
        return snapshot(customer)


def create_addon(store: Store, sub_id: str, body: Json) -> Json:
    """Razorpay takes `item` and `quantity` (1-10) only; `item.name`/`description` are kept
    verbatim, which is where a client can put a marker to reconcile by."""
    store.check_fields(body, ("item", "quantity"))
    quantity = as_int(body, "quantity", default=1, minimum=1, maximum=10)
    assert quantity is not None
    with store.lock:
        sub = find(store.subscriptions, sub_id)
        if sub["status"] in TERMINAL:
            raise ApiError("The subscription is in a terminal state", field="status")
        currency = store.plans[sub["plan_id"]]["item"]["currency"]
        addon_item = parse_item(store, body.get("item"), kind="addon", currency=currency)
        addon = entities.addon(
            sub_id=sub_id, addon_item=addon_item, quantity=quantity, now=store.now
        )
        store.addons[addon["id"]] = addon
        return snapshot(addon)


def delete_addon(store: Store, addon_id: str) -> list[Any]:
    """Only an add-on not yet on an invoice can be deleted; the answer is ``[]``."""
    with store.lock:
        addon = find(store.addons, addon_id)
        if addon["invoice_id"] is not None:
            raise ApiError(
                "Delete operation cannot be performed on the addon.",
                metadata={"addon_id": addon_id, "invoice_id": addon["invoice_id"]},
            )
        del store.addons[addon_id]
        return []


def fetch(store: Store, table: Mapping[str, Json], entity_id: str) -> Json:
    with store.lock:
        return snapshot(find(table, entity_id))


def list_all(
    store: Store, table: Mapping[str, Json], query: Mapping[str, str], *filters: str
) -> Json:
    with store.lock:
        return collection(store, table.values(), query, filters=filters)
