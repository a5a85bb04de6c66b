"""Webhook event bodies in the documented shape, with the documented quirks as options.

``{"entity": "event", "account_id": "acc_...", "event": "subscription.charged",
"contains": ["subscription", "payment"], "payload": {"subscription": {"entity": {...}},
"payment": {"entity": {...}}}, "created_at": 1567690383}``
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

from tests.fakes.razorpay.errors import Json

SUBSCRIPTION_EVENTS = (
    "authenticated",
    "activated",
    "charged",
    "pending",
    "halted",
    "cancelled",
    "completed",
    "paused",
    "resumed",
    "updated",
)


@dataclass(frozen=True)
class EventQuirks:
    """Variations in Razorpay's documented webhook samples; a receiver must accept each.

    - `captured`: what a captured payment's `captured` reads, ``True`` or the string ``"1"``.
    - `empty_notes`: empty notes as ``[]`` (what Razorpay's PHP emits) or ``{}``.
    - `stray_payment`: put the subscription's latest payment in `payload` even when
      `contains` does not list it (one `activated` sample does this).
    - `created_at_in_payload`: move `created_at` from the top level into `payload`
      (another `activated` sample does this).
    """

    captured: bool | str = True
    empty_notes: Literal["list", "dict"] = "list"
    stray_payment: bool = False
    created_at_in_payload: bool = False


def _with_quirks(entity: Json, quirks: EventQuirks) -> Json:
    rendered = copy.deepcopy(entity)
    if rendered.get("notes") == [] and quirks.empty_notes == "dict":
        rendered["notes"] = {}
    if rendered.get("entity") == "payment" and rendered.get("captured") is True:
        rendered["captured"] = quirks.captured
    return rendered


def subscription_event(
    name: str,
    *,
    account_id: str,
    subscription: Json,
    payment: Json | None,
    with_payment: bool,
    quirks: EventQuirks,
    now: int,
) -> Json:
    """`subscription.<name>`; `with_payment` says whether `contains` lists the payment."""
    sub_entity = _with_quirks(subscription, quirks)
    sub_entity["type"] = 2  # present in the documented webhook samples, absent from the API
    payload: Json = {"subscription": {"entity": sub_entity}}
    contains = ["subscription"]
    if payment is not None and (with_payment or quirks.stray_payment):
        payload["payment"] = {"entity": _with_quirks(payment, quirks)}
        if with_payment:
            contains.append("payment")
    event: Json = {
        "entity": "event",
        "account_id": account_id,
        "event": f"subscription.{name}",
        "contains": contains,
        "payload": payload,
        "created_at": now,
    }
    if quirks.created_at_in_payload:
        payload["created_at"] = event.pop("created_at")
    return event
