"""Razorpay entities as the API renders them, plus ids and billing-period arithmetic.

Shapes follow Razorpay's documented samples. Empty `notes` render as ``[]`` (a PHP empty array),
as the real API does; timestamps are Unix seconds; amounts are integer paise.
"""

from __future__ import annotations

import calendar
import secrets
import string
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.fakes.razorpay.errors import Json

_ID_ALPHABET = string.ascii_letters + string.digits
IST = timezone(timedelta(hours=5, minutes=30))  # Razorpay bills on Indian time
PERIODS = ("daily", "weekly", "monthly", "quarterly", "yearly")
_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
_DAYS = {"daily": 1, "weekly": 7}


def new_id(prefix: str) -> str:
    """`plan_`, `sub_`, ... followed by 14 base62 characters, like Razorpay's public ids."""
    return prefix + "_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(14))


def rendered_notes(notes: Json) -> Json | list[Any]:
    return dict(notes) if notes else []


def add_periods(anchor: int, period: str, interval: int, cycles: int) -> int:
    """`anchor` moved forward by `cycles` billing periods (calendar months clamp the day)."""
    if period in _DAYS:
        return anchor + _DAYS[period] * 86_400 * interval * cycles
    start = datetime.fromtimestamp(anchor, IST)
    months = start.month - 1 + _MONTHS[period] * interval * cycles
    year, month = start.year + months // 12, months % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def item(
    *, name: str, amount: int, currency: str, description: str | None, kind: str, now: int
) -> Json:
    return {
        "id": new_id("item"),
        "active": True,
        "name": name,
        "description": description,
        "amount": amount,
        "unit_amount": amount,
        "currency": currency,
        "type": kind,
        "unit": None,
        "tax_inclusive": False,
        "hsn_code": None,
        "sac_code": None,
        "tax_rate": None,
        "tax_id": None,
        "tax_group_id": None,
        "created_at": now,
        "updated_at": now,
    }


def plan(*, period: str, interval: int, plan_item: Json, notes: Json, now: int) -> Json:
    return {
        "id": new_id("plan"),
        "entity": "plan",
        "interval": interval,
        "period": period,
        "item": plan_item,
        "notes": rendered_notes(notes),
        "created_at": now,
    }


def customer(
    *,
    name: str | None,
    email: str | None,
    contact: str | None,
    gstin: str | None,
    notes: Json,
    now: int,
) -> Json:
    return {
        "id": new_id("cust"),
        "entity": "customer",
        "name": name,
        "email": email,
        "contact": contact,
        "gstin": gstin,
        "notes": rendered_notes(notes),
        "created_at": now,
    }


def subscription(
    *,
    sub_id: str,
    plan_id: str,
    customer_id: str | None,
    total_count: int,
    quantity: int,
    notes: Json,
    customer_notify: bool,
    start_at: int | None,
    end_at: int,
    expire_by: int | None,
    short_url: str,
    now: int,
) -> Json:
    return {
        "id": sub_id,
        "entity": "subscription",
        "plan_id": plan_id,
        "customer_id": customer_id,
        "status": "created",
        "current_start": None,
        "current_end": None,
        "ended_at": None,
        "quantity": quantity,
        "notes": rendered_notes(notes),
        "charge_at": start_at if start_at is not None else now,
        "start_at": start_at,
        "end_at": end_at,
        "auth_attempts": 0,
        "total_count": total_count,
        "paid_count": 0,
        "customer_notify": customer_notify,
        "created_at": now,
        "expire_by": expire_by,
        "short_url": short_url,
        "has_scheduled_changes": False,
        "change_scheduled_at": None,
        "source": "api",
        "offer_id": None,
        "remaining_count": total_count,
    }


def addon(*, sub_id: str, addon_item: Json, quantity: int, now: int) -> Json:
    return {
        "id": new_id("ao"),
        "entity": "addon",
        "item": addon_item,
        "quantity": quantity,
        "created_at": now,
        "subscription_id": sub_id,
        "invoice_id": None,
    }


def line_item(source: Json, quantity: int) -> Json:
    """An invoice line for a plan item or an add-on item."""
    amount = source["amount"] * quantity
    return {
        "id": new_id("li"),
        "item_id": source["id"],
        "ref_id": None,
        "ref_type": None,
        "name": source["name"],
        "description": source["description"],
        "amount": source["amount"],
        "unit_amount": source["amount"],
        "gross_amount": amount,
        "tax_amount": 0,
        "taxable_amount": amount,
        "net_amount": amount,
        "currency": source["currency"],
        "type": source["type"],
        "tax_inclusive": False,
        "hsn_code": None,
        "sac_code": None,
        "tax_rate": None,
        "unit": None,
        "quantity": quantity,
        "taxes": [],
    }


def invoice(
    *, sub: Json, customer_entity: Json | None, lines: list[Json], short_url: str, now: int
) -> Json:
    amount = sum(line["net_amount"] for line in lines)
    details = customer_entity or {}
    return {
        "id": new_id("inv"),
        "entity": "invoice",
        "receipt": None,
        "invoice_number": None,
        "customer_id": sub["customer_id"],
        "customer_details": {
            "id": sub["customer_id"],
            "name": details.get("name"),
            "email": details.get("email"),
            "contact": details.get("contact"),
            "gstin": details.get("gstin"),
            "billing_address": None,
            "shipping_address": None,
            "customer_name": details.get("name"),
            "customer_email": details.get("email"),
            "customer_contact": details.get("contact"),
        },
        "order_id": new_id("order"),
        "subscription_id": sub["id"],
        "line_items": lines,
        "payment_id": None,
        "status": "issued",
        "expire_by": None,
        "issued_at": now,
        "paid_at": None,
        "cancelled_at": None,
        "expired_at": None,
        "sms_status": None,
        "email_status": None,
        "date": now,
        "terms": None,
        "partial_payment": False,
        "gross_amount": amount,
        "tax_amount": 0,
        "taxable_amount": amount,
        "amount": amount,
        "amount_paid": 0,
        "amount_due": amount,
        "currency": lines[0]["currency"],
        "currency_symbol": "₹",
        "description": None,
        "notes": [],
        "comment": None,
        "short_url": short_url,
        "view_less": True,
        "billing_start": sub["current_start"],
        "billing_end": sub["current_end"],
        "type": "invoice",
        "group_taxes_discounts": False,
        "created_at": now,
        "idempotency_key": None,
    }


def payment(*, inv: Json, customer_entity: Json | None, captured: bool, now: int) -> Json:
    """A recurring card payment for `inv`: captured, or failed with Razorpay's error fields."""
    amount = inv["amount"]
    fee = (amount * 2 + 50) // 100  # 2% ...
    tax = (fee * 18 + 50) // 100  # ... plus 18% GST on the fee
    details = customer_entity or {}
    return {
        "id": new_id("pay"),
        "entity": "payment",
        "amount": amount,
        "currency": inv["currency"],
        "status": "captured" if captured else "failed",
        "order_id": inv["order_id"],
        "invoice_id": inv["id"],
        "international": False,
        "method": "card",
        "amount_refunded": 0,
        "refund_status": None,
        "captured": captured,
        "description": "Recurring payment via Subscription",
        "card_id": new_id("card"),
        "bank": None,
        "wallet": None,
        "vpa": None,
        "email": details.get("email"),
        "contact": details.get("contact"),
        "customer_id": inv["customer_id"],
        "token_id": new_id("token"),
        "notes": [],
        "fee": fee + tax if captured else None,
        "tax": tax if captured else None,
        "error_code": None if captured else "BAD_REQUEST_ERROR",
        "error_description": None if captured else "Payment failed due to insufficient funds.",
        "error_source": None if captured else "customer",
        "error_step": None if captured else "payment_authorization",
        "error_reason": None if captured else "insufficient_funds",
        "created_at": now,
    }
