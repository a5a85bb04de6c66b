"""Expected failures as typed exceptions, rendered in Anthropic's error shape:
``{"type": "error", "error": {"type": "...", "message": "..."}, "request_id": "..."}``."""

from __future__ import annotations

import json
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match

REQUEST_ID_HEADER = "x-tollgate-request-id"


class TollgateError(Exception):
    status: int = 500
    error_type: str = "api_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str) -> bytes:
        """The response body: the error shape (an error relayed from upstream keeps its own)."""
        return error_body(self.error_type, self.message, request_id)


class InvalidRequest(TollgateError):
    status, error_type = 400, "invalid_request_error"


class AuthenticationFailed(TollgateError):
    status, error_type = 401, "authentication_error"


class PermissionDenied(TollgateError):
    status, error_type = 403, "permission_error"


class NotFound(TollgateError):
    status, error_type = 404, "not_found_error"


class Conflict(TollgateError):
    """The request contradicts what is stored: a taken name, a key already revoked."""

    status, error_type = 409, "invalid_request_error"


class RequestTooLarge(TollgateError):
    status, error_type = 413, "request_too_large"


class BadGateway(TollgateError):
    """A service we depend on (the upstream, Razorpay) failed or could not be reached."""

    status, error_type = 502, "api_error"


class RequestTimeout(TollgateError):
    status, error_type = 408, "timeout_error"


class HeadersTooLarge(TollgateError):
    status, error_type = 431, "request_too_large"


class ServiceUnavailable(TollgateError):
    status, error_type = 503, "api_error"


class Overloaded(TollgateError):
    status, error_type = 529, "overloaded_error"


class UpstreamTimeout(TollgateError):
    status, error_type = 504, "timeout_error"


_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    431: "request_too_large",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    return _STATUS_TYPES.get(status, "api_error")


def request_id_of(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = str(uuid.uuid4())
        request.state.request_id = rid
    return str(rid)


def error_body(error_type: str, message: str, request_id: str) -> bytes:
    return json.dumps(
        {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }
    ).encode()


def error_response(
    status: int,
    error_type: str,
    message: str,
    request_id: str,
    headers: dict[str, str] | None = None,
) -> Response:
    all_headers = {REQUEST_ID_HEADER: request_id, **(headers or {})}
    return Response(
        error_body(error_type, message, request_id),
        status_code=status,
        media_type="application/json",
        headers=all_headers,
    )


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.routes):
            allowed.append(method)
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    async def on_tollgate_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TollgateError)
        rid = request_id_of(request)
        return Response(
            exc.body(rid),
            status_code=exc.status,
            media_type="application/json",
            headers={REQUEST_ID_HEADER: rid, **exc.headers},
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        rid = request_id_of(request)
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() != "allow"}
        if exc.status_code == 405:
            headers["allow"] = allowed_methods(request)
        return error_response(
            exc.status_code, error_type_for(exc.status_code), str(exc.detail), rid, headers
        )

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        return error_response(400, "invalid_request_error", message, request_id_of(request))

    async def on_client_gone(request: Request, exc: Exception) -> Response:
        # The client hung up while sending its request: nothing was spent, nobody is listening.
        return error_response(
            400, "invalid_request_error", "client disconnected", request_id_of(request)
        )

    app.add_exception_handler(TollgateError, on_tollgate_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(ClientDisconnect, on_client_gone)
