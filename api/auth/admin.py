"""Admin authentication: `Authorization: Bearer $TOLLGATE_ADMIN_TOKEN`, compared in constant
time. Attached to the admin router itself, so no admin route can forget it.

Without a configured token the admin API is off (403). A tenant API key is simply not the
admin token (401)."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from api.errors import AuthenticationFailed, PermissionDenied
from api.state import State

_DISABLED = "admin API disabled: set TOLLGATE_ADMIN_TOKEN"
_REQUIRED = "a valid admin token is required (Authorization: Bearer <TOLLGATE_ADMIN_TOKEN>)"


def _bearer(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def token_matches(presented: str, expected: str) -> bool:
    """Constant time in the tokens' contents; comparing digests also hides their lengths."""
    return hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


async def require_admin(request: Request, state: State) -> None:
    expected = state.settings.admin_token
    if expected is None:
        raise PermissionDenied(_DISABLED)
    presented = _bearer(request)
    if not presented or not token_matches(presented, expected.get_secret_value()):
        raise AuthenticationFailed(_REQUIRED, headers={"www-authenticate": "Bearer"})
