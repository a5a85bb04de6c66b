"""Admin authentication: `Authorization: Bearer TOKEN`, where TOKEN is the bootstrap token
(TOLLGATE_ADMIN_TOKEN, compared in constant time; actor "bootstrap") or a live named admin token
(`tollgate admin-token create`, looked up by its SHA-256; actor = its name). Attached to the
admin routers themselves, so no admin route can forget it, and required by `admin_body`, so no
admin body is read (let alone parsed) before the token is checked.

Roles: `admin` may do everything; `viewer` may read (GET/HEAD) and gets 403 `permission_error`
on any write. Without a bootstrap token, and for a presented token that is not a named one, the
admin API is off (403). A tenant API key is simply not an admin token (401). Failed attempts
are throttled per client address (429 + retry-after)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from pydantic import BaseModel

from api.audit import Actor
from api.auth.admin_tokens import find_token, looks_like_token
from api.db.errors import DB_ERRORS, unavailable
from api.errors import REQUEST_ID_HEADER, AuthenticationFailed, PermissionDenied, request_id_of
from api.http.jsonbody import parse_json_object, validate_body
from api.http.throttle import Throttle, client_address
from api.state import AppState, State

_DISABLED = "admin API disabled: set TOLLGATE_ADMIN_TOKEN"
_REQUIRED = "a valid admin token is required (Authorization: Bearer <admin token>)"
_READ_ONLY = "this admin token has the viewer role: it can read, not change anything"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
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


async def _named(state: AppState, presented: str, request_id: str) -> Actor | None:
    try:
        async with state.engine.connect() as conn:
            found = await find_token(conn, presented)
    except DB_ERRORS as exc:
        raise unavailable(exc) from None
    if found is None:
        return None
    return Actor(found.name, found.role, request_id, found.id)


async def require_admin(
    request: Request, response: Response, state: State, throttle: Throttle
) -> Actor:
    bootstrap = state.settings.admin_token
    presented = _bearer(request)
    named = looks_like_token(presented)
    if bootstrap is None and not named:
        raise PermissionDenied(_DISABLED)
    subject = "admin:" + client_address(request)
    throttle.check(subject)
    request_id = request_id_of(request)
    actor: Actor | None = None
    if named:
        actor = await _named(state, presented, request_id)
    elif presented and bootstrap and token_matches(presented, bootstrap.get_secret_value()):
        actor = Actor("bootstrap", "admin", request_id)
    if actor is None:
        throttle.failed(subject)
        raise AuthenticationFailed(_REQUIRED, headers={"www-authenticate": "Bearer"})
    if request.method not in _READS and not actor.can_write:
        raise PermissionDenied(_READ_ONLY)
    response.headers[REQUEST_ID_HEADER] = request_id  # the audit log's request_id
    return actor


Admin = Annotated[Actor, Depends(require_admin)]


def no_content(admin: Actor) -> Response:
    """A 204 that still names its request id (a returned Response skips dependency headers)."""
    return Response(status_code=204, headers={REQUEST_ID_HEADER: admin.request_id or ""})


def admin_body(model: type[M]) -> Any:
    """A dependency giving the request body as `model`, read only after the admin check."""

    async def read_admin_body(request: Request, _: Admin) -> M:
        return validate_body(model, await request.body())

    return Depends(read_admin_body)


async def _admin_json_object(request: Request, _: Admin) -> dict[str, Any]:
    return parse_json_object(await request.body())


AdminJsonObject = Annotated[dict[str, Any], Depends(_admin_json_object)]
"""The request body as a JSON object (strictly parsed), read only after the admin check: for
routes whose body is validated by the domain, not by a pydantic model."""
