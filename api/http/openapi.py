"""The OpenAPI document, made to tell the truth about the service: every error in the one
error shape with the statuses each route really answers (400, never 422), and request bodies
that routes read themselves declared with their schema."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
        "request_id": {"type": "string"},
    },
}

_WHAT = {
    400: "invalid request (malformed JSON, a duplicate key, a bad field)",
    401: "missing or invalid credentials",
    402: "a budget is spent",
    403: "not allowed (suspended tenant, model not on the plan, admin API off)",
    404: "not found (or an unknown model)",
    409: "conflicts with existing state",
    413: "request body too large",
    429: "rate, concurrency or failed-authentication limit; see retry-after",
    502: "the upstream (or Razorpay) could not be reached",
    503: "the usage database (or billing) is unavailable",
    504: "the upstream did not answer in time",
    529: "the upstream is overloaded",
}
_UPSTREAM = {400, 401, 402, 403, 404, 413, 429, 502, 503, 504, 529}
_TENANT = {400, 401, 403, 404, 429, 503}
_ADMIN = {400, 401, 403, 404, 409, 413, 429, 502, 503}
_SSE: dict[str, Any] = {"text/event-stream": {}}


def _statuses(path: str) -> set[int]:
    if path in ("/v1/messages", "/chat", "/v1/messages/count_tokens"):
        return _UPSTREAM
    if path.startswith("/admin/"):
        return _ADMIN
    if path.startswith("/v1/"):
        return _TENANT
    if path.startswith("/webhooks/"):
        return {400, 413, 503}
    if path == "/readyz":
        return {503}
    return set()


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": _WHAT.get(status, "error"),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _hoist_defs(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    content = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        schemas.update(media.get("schema", {}).pop("$defs", {}))


def _fix_operation(path: str, operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    _hoist_defs(operation, schemas)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    for status in sorted(_statuses(path)):
        responses.setdefault(str(status), _error_response(status))
    ok = responses.get("200")
    if ok is not None and path == "/chat":
        ok["content"] = _SSE
    elif ok is not None and path == "/v1/messages":
        ok["content"] = {"application/json": {"schema": {"type": "object"}}, **_SSE}


def truthful_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    for path, item in doc.get("paths", {}).items():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                _fix_operation(path, operation, schemas)
    return doc


def install_openapi(app: FastAPI) -> None:
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cached:
            cached.update(truthful_openapi(app))
        return cached

    app.openapi = openapi  # type: ignore[method-assign]
