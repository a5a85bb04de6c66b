"""`POST /webhooks/razorpay`: verify the signature on the raw bytes before anything else,
store the event once, answer 200 fast, apply it."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.errors import InvalidRequest, ServiceUnavailable
from api.http.body import read_body
from api.http.docs import WEBHOOK_BODY, json_body
from api.http.jsonbody import parse_json_object
from api.inputs import check_text
from api.state import State
from billing.inbox import process, store

log = logging.getLogger(__name__)
router = APIRouter(tags=["billing"])

MAX_WEBHOOK_BYTES = 1024 * 1024
MAX_EVENT_ID_LENGTH = 128  # Razorpay's are about 20 characters


def signature_ok(raw: bytes, signature: str, secret: str) -> bool:
    """Hex HMAC-SHA256 of the raw body with the webhook secret, compared in constant time."""
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


@router.post("/webhooks/razorpay", openapi_extra=json_body(WEBHOOK_BODY))
async def razorpay_webhook(request: Request, state: State) -> JSONResponse:
    billing = state.billing
    if billing is None:
        raise ServiceUnavailable("billing is not configured (set the RAZORPAY_* variables)")
    raw = await read_body(request, MAX_WEBHOOK_BYTES)
    signature = request.headers.get("x-razorpay-signature", "")
    secret = billing.settings.webhook_secret
    assert secret is not None
    if not signature or not signature_ok(raw, signature, secret.get_secret_value()):
        log.warning("razorpay webhook with a missing or wrong signature refused")
        raise InvalidRequest("invalid or missing X-Razorpay-Signature")
    event_id = request.headers.get("x-razorpay-event-id", "").strip()
    if not event_id:
        raise InvalidRequest("missing X-Razorpay-Event-Id")
    check_text(event_id, "X-Razorpay-Event-Id", MAX_EVENT_ID_LENGTH)
    payload = parse_json_object(raw, "body")
    async with state.sessions() as session, session.begin():
        new = await store(session, event_id, json.dumps(payload), payload)
    if new:
        try:  # cheap enough to do now; the background loop retries it if this fails
            async with state.sessions() as session, session.begin():
                await process(session, event_id, billing.settings)
        except Exception:
            log.exception("webhook %s stored; applying it failed, will retry", event_id)
    return JSONResponse({"status": "ok", "duplicate": not new})
