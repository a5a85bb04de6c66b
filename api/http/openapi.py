"""The OpenAPI document, made to tell the truth about the service: every error in the shape its
route really uses (Anthropic's, or OpenAI's on the OpenAI routes) with the statuses each route
really answers (400, never 422; `retry-after` where the client should wait), the credential
each route asks for, and the request bodies of routes that read their own."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.http.openapi_routes import EDGE, route_doc

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

OPENAI_ERROR_SCHEMA: dict[str, Any] = {
    "title": "OpenAIError",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

SECURITY_SCHEMES: dict[str, Any] = {
    "TenantKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "TenantBearer": {"type": "http", "scheme": "bearer", "description": "the same tenant key"},
    "AdminToken": {"type": "http", "scheme": "bearer", "description": "an admin token"},
}
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "tenant": [{"TenantKey": []}, {"TenantBearer": []}],
    "admin": [{"AdminToken": []}],
}

_WHAT = {
    400: "invalid request (malformed JSON, a duplicate key, a bad field or parameter)",
    401: "missing or invalid credentials",
    402: "a budget is spent",
    403: "not allowed (suspended tenant, model not on the plan, read-only token)",
    404: "not found (an unknown id, plan or model)",
    408: "the request head or body did not arrive in time",
    409: "conflicts with existing state",
    413: "request body too large",
    429: "rate, concurrency or failed-authentication limit; see retry-after",
    431: "request header fields too large",
    502: "the upstream (or Razorpay) could not be reached or answered badly",
    503: "the usage database (or billing) is unavailable; see retry-after",
    504: "the upstream did not answer in time",
    529: "overloaded (the usage database is busy, or the upstream); see retry-after",
}
_RETRY_AFTER = {
    "retry-after": {"description": "seconds to wait", "schema": {"type": "string"}},
}
_ERROR_REFS = {
    "anthropic": {"$ref": "#/components/schemas/Error"},
    "openai": {"$ref": "#/components/schemas/OpenAIError"},
    "either": {
        "anyOf": [
            {"$ref": "#/components/schemas/Error"},
            {"$ref": "#/components/schemas/OpenAIError"},
        ]
    },
}
_EVENT: dict[str, Any] = {
    "title": "ServerSentEvent",
    "type": "object",
    "required": ["data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
}
_SSE: dict[str, Any] = {"text/event-stream": {"schema": _EVENT}}
_JSON_OR_SSE: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}, **_SSE}
_STREAMED = {"/chat": _SSE, "/v1/messages": _JSON_OR_SSE, "/v1/chat/completions": _JSON_OR_SSE}


def _error_response(status: int, errors: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _WHAT.get(status, "error"),
        "content": {"application/json": {"schema": _ERROR_REFS[errors]}},
    }
    if status in (429, 503, 529):
        response["headers"] = _RETRY_AFTER
    return response


def _hoist_defs(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    content = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        schemas.update(media.get("schema", {}).pop("$defs", {}))


def _fix_operation(
    method: str, path: str, operation: dict[str, Any], schemas: dict[str, Any]
) -> None:
    _hoist_defs(operation, schemas)
    doc = route_doc(method, path)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    for status in sorted(doc.statuses | EDGE):
        responses.setdefault(str(status), _error_response(status, doc.errors))
    if doc.security is not None:
        operation["security"] = _SECURITY[doc.security]
    ok = responses.get("200")
    if ok is not None and path in _STREAMED:
        ok["content"] = _STREAMED[path]
    if ok is not None and doc.ok is not None:
        ok["content"] = doc.ok
    if ok is not None and doc.created:
        responses["201"] = {**ok, "description": "created"}


# Created ids and the operations that take them (OpenAPI links: stateful tests follow them).
# An uploaded file's content is not downloadable (only files the upstream creates are, as at
# Anthropic: 400), so no link leads from an upload to /content.
_FILE = "/v1/files/{file_id}"
_BATCH = "/v1/messages/batches/{batch_id}"
_LINKS: dict[tuple[str, str], tuple[str, list[tuple[str, str]]]] = {
    ("post", "/v1/files"): (
        "file_id",
        [("get", _FILE), ("delete", _FILE)],
    ),
    ("post", "/v1/messages/batches"): (
        "batch_id",
        [("get", _BATCH), ("get", _BATCH + "/results"), ("post", _BATCH + "/cancel")],
    ),
}


def _add_links(paths: dict[str, Any]) -> None:
    for (method, path), (param, targets) in _LINKS.items():
        ok = paths.get(path, {}).get(method, {}).get("responses", {}).get("200")
        if ok is None:
            continue
        for target_method, target in targets:
            operation = paths.get(target, {}).get(target_method)
            if operation is None or "operationId" not in operation:
                continue
            ok.setdefault("links", {})[operation["operationId"]] = {
                "operationId": operation["operationId"],
                "parameters": {param: "$response.body#/id"},
            }


def truthful_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    schemas["OpenAIError"] = OPENAI_ERROR_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _fix_operation(method, path, operation, schemas)
    _add_links(doc.get("paths", {}))
    return doc


def install_openapi(app: FastAPI) -> None:
    cached: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not cached:
            cached.update(truthful_openapi(app))
        return cached

    app.openapi = openapi  # type: ignore[method-assign]
