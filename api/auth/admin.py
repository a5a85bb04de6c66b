"""Admin authentication: `Authorization: Bearer $TOLLGATE_ADMIN_TOKEN`, compared in constant
time. Attached to the admin router itself, so no admin route can forget it, and required by
`admin_body`, so no admin body is read (let alone parsed) before the token is checked.

Without a configured token the admin API is off (403). A tenant API key is simply not the
admin token (401). Failed attempts are throttled per client address (429 + retry-after)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel

from api.errors import AuthenticationFailed, PermissionDenied
from api.http.jsonbody import validate_body
from api.http.throttle import Throttle, client_address
from api.state import State

_DISABLED = "admin API disabled: set TOLLGATE_ADMIN_TOKEN"
_REQUIRED = "a valid admin token is required (Authorization: Bearer <TOLLGATE_ADMIN_TOKEN>)"
M = TypeVar("M", bound=BaseModel)


def _bearer(request: Request) -> str:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def token_matches(presented: str, expected: str) -> bool:
    """Constant time in the tokens' contents; comparing digests also hides their lengths."""
    return hmac.compare_digest(
        hashlib.sha256(presented.encode(errors="surrogatepass")).digest(),
        hashlib.sha256(expected.encode()).digest(),
    )


async def require_admin(request: Request, state: State, throttle: Throttle) -> None:
    expected = state.settings.admin_token
    if expected is None:
        raise PermissionDenied(_DISABLED)
    subject = "admin:" + client_address(request)
    throttle.check(subject)
    presented = _bearer(request)
    if not presented or not token_matches(presented, expected.get_secret_value()):
        throttle.failed(subject)
        raise AuthenticationFailed(_REQUIRED, headers={"www-authenticate": "Bearer"})


AdminAuth = Annotated[None, Depends(require_admin)]


def admin_body(model: type[M]) -> Any:
    """A dependency giving the request body as `model`, read only after the admin check."""

    async def read_admin_body(request: Request, _: AdminAuth) -> M:
        return validate_body(model, await request.body())

    return Depends(read_admin_body)
