"""OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`, and the mapping
from Anthropic's (and Tollgate's own) error types and statuses to it.

Statuses are kept as the gateway produced them (402 stays 402 so the SDK does not retry a
spent budget; 429 stays 429 so it does, honouring `retry-after`), except 529, which OpenAI's
clients do not know: it becomes 503 with `code: "overloaded"`."""

from __future__ import annotations

import json
from dataclasses import dataclass


class OpenAIRequestError(Exception):
    """A request that cannot be honoured as sent: an OpenAI-shaped 400 naming the parameter."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class UnsupportedParameter(OpenAIRequestError):
    """A parameter Tollgate cannot honour on Claude; dropping it would change the answer."""

    def __init__(self, param: str, why: str) -> None:
        super().__init__(f"{param}: {why}", param, "unsupported_parameter")


@dataclass(frozen=True)
class OpenAIErrorShape:
    status: int
    type: str
    code: str | None


# Anthropic / Tollgate error type -> (OpenAI type, code). Statuses follow the original.
_BY_TYPE: dict[str, tuple[str, str | None]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "permission_error": ("invalid_request_error", "permission_denied"),
    "not_found_error": ("invalid_request_error", "model_not_found"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "rate_limit_error": ("requests", "rate_limit_exceeded"),
    "api_error": ("server_error", None),
    "timeout_error": ("server_error", "timeout"),
    "overloaded_error": ("server_error", "overloaded"),
}

_DEFAULT_TYPE_FOR_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def openai_error_shape(status: int, anthropic_type: str | None) -> OpenAIErrorShape:
    """The OpenAI status, type and code for an Anthropic-style error."""
    kind = anthropic_type or _DEFAULT_TYPE_FOR_STATUS.get(status, "")
    openai_type, code = _BY_TYPE.get(
        kind, ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    )
    return OpenAIErrorShape(503 if status == 529 else status, openai_type, code)


def error_object(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, object]:
    return {"message": message, "type": error_type, "param": param, "code": code}


def error_json(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> bytes:
    return json.dumps({"error": error_object(message, error_type, param, code)}).encode()


def request_error_json(exc: OpenAIRequestError) -> bytes:
    return error_json(exc.message, "invalid_request_error", exc.param, exc.code)


def translate_error_body(status: int, body: bytes) -> tuple[int, bytes]:
    """An Anthropic error response (status, JSON body) as OpenAI's (status, JSON body)."""
    anthropic_type, message = _parse_anthropic_error(body)
    shape = openai_error_shape(status, anthropic_type)
    text = message or f"upstream error (HTTP {status})"
    return shape.status, error_json(text, shape.type, None, shape.code)


def _parse_anthropic_error(body: bytes) -> tuple[str | None, str | None]:
    try:
        parsed: object = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("error"), dict):
        return None, None
    error = parsed["error"]
    kind, message = error.get("type"), error.get("message")
    return (
        kind if isinstance(kind, str) else None,
        message if isinstance(message, str) else None,
    )
