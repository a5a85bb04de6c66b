"""`POST /webhooks/razorpay`: the `verified_event` dependency checks the signature on the raw
bytes before anything is parsed; the handler stores the event once, applies it, answers 200."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.errors import InvalidRequest
from api.http.body import read_body
from api.http.docs import WEBHOOK_BODY, json_body
from api.http.jsonbody import parse_json_object
from api.inputs import check_text
from api.state import State
from billing.deps import Billing
from billing.inbox import receive

log = logging.getLogger(__name__)
router = APIRouter(tags=["billing"])

MAX_WEBHOOK_BYTES = 1024 * 1024
MAX_EVENT_ID_LENGTH = 128  # Razorpay's are about 20 characters


def signature_ok(raw: bytes, signature: str, secret: str) -> bool:
    """Hex HMAC-SHA256 of the raw body with the webhook secret, compared in constant time."""
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


@dataclass(frozen=True)
class VerifiedEvent:
    event_id: str
    payload: dict[str, Any]


async def verified_event(request: Request, billing: Billing) -> VerifiedEvent:
    """The delivery, once its X-Razorpay-Signature matches the raw body (400 otherwise)."""
    raw = await read_body(request, MAX_WEBHOOK_BYTES)
    signature = request.headers.get("x-razorpay-signature", "")
    secret = billing.settings.webhook_secret
    assert secret is not None  # billing is on only with every secret set
    if not signature or not signature_ok(raw, signature, secret.get_secret_value()):
        log.warning("razorpay webhook with a missing or wrong signature refused")
        raise InvalidRequest("invalid or missing X-Razorpay-Signature")
    event_id = request.headers.get("x-razorpay-event-id", "").strip()
    if not event_id:
        raise InvalidRequest("missing X-Razorpay-Event-Id")
    check_text(event_id, "X-Razorpay-Event-Id", MAX_EVENT_ID_LENGTH)
    return VerifiedEvent(event_id, parse_json_object(raw, "body"))


@router.post("/webhooks/razorpay", openapi_extra=json_body(WEBHOOK_BODY))
async def razorpay_webhook(
    event: Annotated[VerifiedEvent, Depends(verified_event)], billing: Billing, state: State
) -> JSONResponse:
    new = await receive(state.sessions, billing.settings, event.event_id, event.payload)
    return JSONResponse({"status": "ok", "duplicate": not new})
