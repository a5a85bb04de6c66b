"""Signed webhook deliveries, as Razorpay makes them, and the ways they go wrong.

Razorpay signs the exact bytes it sends: ``X-Razorpay-Signature`` is the hex HMAC-SHA256 of the
raw body keyed with the webhook secret. Its bodies come from PHP's ``json_encode``: compact, with
``/`` escaped as ``\\/`` and non-ASCII as ``\\uXXXX``. A receiver that parses and re-serializes
before verifying gets different bytes (Python's ``json.dumps`` writes ``/`` and spaces), and so
a different signature; that is what the helpers here let a test prove.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

Style = Literal["razorpay", "compact", "spaced", "pretty", "reordered"]
_ALPHABET = string.ascii_letters + string.digits


def sign(body: bytes, secret: str) -> str:
    """Hex HMAC-SHA256 of the raw body, keyed with the webhook secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _reorder(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reorder(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reorder(item) for item in value]
    return value


def serialize(event: Mapping[str, Any], style: Style = "razorpay") -> bytes:
    """The event as bytes. "razorpay": what Razorpay sends (compact, ``\\/``); "compact":
    compact without escaped slashes; "spaced": ``json.dumps`` defaults; "pretty": indented;
    "reordered": compact with every object's keys in reverse order."""
    return dumps(event, style)


def dumps(payload: object, style: Style = "razorpay") -> bytes:
    if style == "razorpay":
        text = json.dumps(payload, separators=(",", ":")).replace("/", "\\/")
    elif style == "compact":
        text = json.dumps(payload, separators=(",", ":"))
    elif style == "spaced":
        text = json.dumps(payload)
    elif style == "pretty":
        text = json.dumps(payload, indent=2)
    else:
        text = json.dumps(_reorder(payload), separators=(",", ":"))
    return text.encode()


def new_event_id() -> str:
    return "evt_" + "".join(secrets.choice(_ALPHABET) for _ in range(14))


@dataclass(frozen=True)
class SignedWebhook:
    """A delivery ready to POST (e.g. through `httpx.AsyncClient` on an ASGI app)."""

    body: bytes
    headers: dict[str, str]
    event_id: str


def signed_webhook(
    event: Mapping[str, Any],
    secret: str,
    event_id: str | None = None,
    *,
    style: Style = "razorpay",
    body_override: bytes | None = None,
    signature_override: str | None = None,
) -> SignedWebhook:
    """Serialize once, sign those exact bytes. `body_override` replaces the body sent (the
    signature still covers the serialized event); `signature_override` replaces the signature."""
    body = serialize(event, style)
    signature = signature_override if signature_override is not None else sign(body, secret)
    event_id = event_id or new_event_id()
    headers = {
        "Content-Type": "application/json",
        "X-Razorpay-Signature": signature,
        "X-Razorpay-Event-Id": event_id,
    }
    return SignedWebhook(
        body=body if body_override is None else body_override, headers=headers, event_id=event_id
    )


def send_webhook(
    url: str,
    event: Mapping[str, Any],
    secret: str,
    event_id: str | None = None,
    *,
    body_override: bytes | None = None,
    signature_override: str | None = None,
    style: Style = "razorpay",
    timeout: float = 5,
) -> httpx.Response:
    """POST one signed delivery of `event` to `url`."""
    delivery = signed_webhook(
        event,
        secret,
        event_id,
        style=style,
        body_override=body_override,
        signature_override=signature_override,
    )
    return httpx.post(url, content=delivery.body, headers=delivery.headers, timeout=timeout)


def send_duplicate(
    url: str,
    event: Mapping[str, Any],
    secret: str,
    event_id: str | None = None,
    *,
    times: int = 2,
    timeout: float = 5,
) -> list[httpx.Response]:
    """Deliver the same event `times` times: same bytes, signature and event id (a retry)."""
    delivery = signed_webhook(event, secret, event_id)
    with httpx.Client(timeout=timeout) as client:
        return [
            client.post(url, content=delivery.body, headers=delivery.headers) for _ in range(times)
        ]


def send_reserialized(
    url: str,
    event: Mapping[str, Any],
    secret: str,
    event_id: str | None = None,
    *,
    style: Style = "pretty",
    resign: bool = False,
    timeout: float = 5,
) -> httpx.Response:
    """Send the event serialized in another `style`. By default the signature is the one for
    Razorpay's own bytes, so a receiver verifying the raw body must reject it (and one that
    re-serializes may wrongly accept it); with `resign=True` the new bytes are signed, so a
    receiver verifying the raw body must accept them (and one that re-serializes rejects)."""
    body = serialize(event, style)
    original = sign(serialize(event), secret)
    return send_webhook(
        url,
        event,
        secret,
        event_id,
        body_override=body,
        signature_override=sign(body, secret) if resign else original,
        timeout=timeout,
    )
