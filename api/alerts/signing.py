"""The alert webhook's body and signature: `Tollgate-Signature: t=<unix>,v1=<hex
HMAC-SHA256(secret, "<t>.<raw body>")>`. A receiver recomputes v1 over the raw bytes it got and
compares in constant time (and may refuse an old `t`)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

HEADER = "Tollgate-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def encode(event: dict[str, Any]) -> bytes:
    """The same event always encodes to the same bytes (every retry sends them)."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
