"""What each route answers besides its success, for the OpenAPI document: the error statuses,
the shape its errors take, and the credential it asks for. Routes not named here fall back on
their prefix (`/admin/…`, `/v1/…`), so a new route is never documented as error-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Answered by the server or the edge middleware on every route, before any handler runs: a
# header block too large (431), a body too large (413) or too slow (408).
EDGE = frozenset({408, 413, 431})
_DB = {503, 529}  # the usage database down, or too busy to admit the request in time
_TENANT = frozenset({401, 403, 429, *_DB})  # bad key; suspended tenant; throttled
_ADMIN = frozenset({400, 401, 403, 429, *_DB})  # 400: a body or parameter; 403: viewer token
_UPSTREAM = frozenset({400, 402, 404, 502, 504})  # plus what the upstream itself answers
_FORWARDED = frozenset({400, 401, 402, 403, 404, 413, 429, 502, 504, 529})  # relayed


@dataclass(frozen=True)
class RouteDoc:
    statuses: frozenset[int]
    errors: str = "anthropic"  # "anthropic", "openai" or "either" (told apart by a header)
    security: str | None = None  # "tenant", "admin" or None (public)
    ok: dict[str, Any] | None = field(default=None, hash=False)  # 200 content, when not JSON
    created: bool = False  # a PUT that answers 201 when it created what it names


_CSV = {"text/csv": {"schema": {"type": "string"}}}
_REPORT: dict[str, Any] = {
    "title": "UsageReport",
    "type": "object",
    "required": ["rows", "total"],
    "properties": {
        "rows": {"type": "array", "items": {"type": "object"}},
        "total": {"type": "object"},
    },
}
_ANY: dict[str, Any] = {"*/*": {"schema": {"type": "string", "format": "binary"}}}
_JSONL = {"application/binary": {"schema": {"type": "string"}}}


def _tenant(*extra: int, errors: str = "anthropic") -> RouteDoc:
    return RouteDoc(_TENANT | set(extra), errors, "tenant")


def _admin(*extra: int) -> RouteDoc:
    return RouteDoc(_ADMIN | set(extra), "anthropic", "admin")


_PROXIED = RouteDoc(_TENANT | _UPSTREAM | _FORWARDED, "anthropic", "tenant")
_UPSTREAM_OWNED = _tenant(400, 404, 502, *_FORWARDED)  # an id the caller owns, then upstream

ROUTES: dict[str, RouteDoc] = {
    "POST /v1/messages": _PROXIED,
    "POST /v1/messages/count_tokens": _tenant(400, 404, 502, 504, *_FORWARDED),
    "POST /chat": _PROXIED,
    "POST /v1/chat/completions": RouteDoc(_TENANT | _UPSTREAM | _FORWARDED, "openai", "tenant"),
    "GET /v1/models": _tenant(400, errors="either"),
    "GET /v1/models/{model_id}": _tenant(404, errors="either"),
    "GET /v1/usage": RouteDoc(
        _TENANT | {400},
        security="tenant",
        ok={
            "application/json": {
                "schema": {"anyOf": [{"$ref": "#/components/schemas/TenantUsage"}, _REPORT]}
            },
            **_CSV,
        },
    ),
    "GET /admin/usage": RouteDoc(
        _ADMIN, security="admin", ok={"application/json": {"schema": _REPORT}, **_CSV}
    ),
    "POST /v1/messages/batches": _tenant(400, 402, 404, 502, *_FORWARDED),
    "GET /v1/messages/batches": _tenant(400, 502),
    "GET /v1/messages/batches/{batch_id}": _UPSTREAM_OWNED,
    "DELETE /v1/messages/batches/{batch_id}": _UPSTREAM_OWNED,
    "POST /v1/messages/batches/{batch_id}/cancel": _UPSTREAM_OWNED,
    "GET /v1/messages/batches/{batch_id}/results": RouteDoc(
        _UPSTREAM_OWNED.statuses, security="tenant", ok=_JSONL
    ),
    "POST /v1/files": _tenant(400, 402, 502, *_FORWARDED),
    "GET /v1/files": _tenant(400),
    "GET /v1/files/{file_id}": _UPSTREAM_OWNED,
    "DELETE /v1/files/{file_id}": _UPSTREAM_OWNED,
    "GET /v1/files/{file_id}/content": RouteDoc(
        _UPSTREAM_OWNED.statuses, security="tenant", ok=_ANY
    ),
    "GET /readyz": RouteDoc(frozenset({503})),
    "POST /webhooks/razorpay": RouteDoc(frozenset({400, 401, 503})),
    "POST /admin/tenants": _admin(404, 409),
    "PATCH /admin/tenants/{tenant_id}": _admin(404, 409),
    "POST /admin/tenants/{tenant_id}/subscription": _admin(404, 409, 502, 503),
    "PUT /admin/plans/{code}": RouteDoc(_ADMIN | {404, 409}, security="admin", created=True),
    "PUT /admin/prices/{model}": RouteDoc(_ADMIN | {409}, security="admin", created=True),
}


def route_doc(method: str, path: str) -> RouteDoc:
    found = ROUTES.get(f"{method.upper()} {path}")
    if found is not None:
        return found
    if path.startswith("/admin/"):
        return _admin(404, 409)
    if path.startswith("/v1/"):
        return _tenant(400, 404)
    return RouteDoc(frozenset())
