"""Razorpay's error shape, and the input checks that produce it.

Every error is ``{"error": {"code", "description", "source", "step", "reason", "metadata",
"field"}}``. The official SDKs pick the exception class from ``error.code`` alone (never from the
HTTP status), so the code is what matters: BAD_REQUEST_ERROR -> BadRequestError, GATEWAY_ERROR ->
GatewayError, anything else -> ServerError.

Messages follow Razorpay's (Laravel validator) wording where it is known: attribute names have
their underscores replaced by spaces ("The total count must be at least 1.").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Json = dict[str, Any]

BAD_REQUEST_ERROR = "BAD_REQUEST_ERROR"
GATEWAY_ERROR = "GATEWAY_ERROR"
SERVER_ERROR = "SERVER_ERROR"

ID_NOT_FOUND = "The id provided does not exist"
URL_NOT_FOUND = "The requested URL was not found on the server."
INVALID_KEY = "The api key provided is invalid"
MISSING_KEY = "Please provide your api key for authentication purposes."
SERVER_TROUBLE = (
    "We are facing some trouble completing your request at the moment. Please try again shortly."
)
GATEWAY_TROUBLE = "Payment processing failed due to error at bank or wallet gateway"


class ApiError(Exception):
    """An API failure the fake answers with Razorpay's error body."""

    def __init__(
        self,
        description: str,
        *,
        status: int = 400,
        code: str = BAD_REQUEST_ERROR,
        field: str | None = None,
        metadata: Json | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.status = status
        self.code = code
        self.field = field
        self.metadata = metadata or {}

    def body(self) -> Json:
        return error_body(self.code, self.description, field=self.field, metadata=self.metadata)


def error_body(
    code: str, description: str, *, field: str | None = None, metadata: Json | None = None
) -> Json:
    return {
        "error": {
            "code": code,
            "description": description,
            "source": "NA",
            "step": "NA",
            "reason": "NA",
            "metadata": metadata or {},
            "field": field,
        }
    }


def code_for_status(status: int) -> str:
    """The error code the fake pairs with an injected status (4xx, 500/503, 502/504)."""
    if status < 500:
        return BAD_REQUEST_ERROR
    return GATEWAY_ERROR if status in (502, 504) else SERVER_ERROR


def _label(name: str) -> str:
    return name.replace("_", " ")


def reject_extra(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    extra = [key for key in data if key not in set(allowed)]
    if extra:
        raise ApiError(f"{', '.join(extra)} is/are not required and should not be sent")


def as_int(
    data: Mapping[str, Any],
    name: str,
    *,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """An integer field; numeric strings are accepted (as Razorpay's validator does)."""
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(f"The {_label(name)} must be an integer.", field=name)
    if minimum is not None and value < minimum:
        raise ApiError(f"The {_label(name)} must be at least {minimum}.", field=name)
    if maximum is not None and value > maximum:
        raise ApiError(f"The {_label(name)} may not be greater than {maximum}.", field=name)
    return value


def required_int(data: Mapping[str, Any], name: str, **limits: int) -> int:
    value = as_int(data, name, **limits)
    if value is None:
        raise ApiError(f"The {_label(name)} field is required.", field=name)
    return value


def as_str(data: Mapping[str, Any], name: str, *, max_len: int = 512) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(f"The {_label(name)} must be a string.", field=name)
    if len(value) > max_len:
        raise ApiError(
            f"The {_label(name)} may not be greater than {max_len} characters.", field=name
        )
    return value


def required_str(data: Mapping[str, Any], name: str, *, max_len: int = 512) -> str:
    value = as_str(data, name, max_len=max_len)
    if not value:
        raise ApiError(f"The {_label(name)} field is required.", field=name)
    return value


def as_bool(data: Mapping[str, Any], name: str, *, default: bool) -> bool:
    """Booleans as Razorpay takes them: true/false, 1/0, "1"/"0", "true"/"false"."""
    value = data.get(name)
    if value is None:
        return default
    if value in (True, 1, "1", "true"):
        return True
    if value in (False, 0, "0", "false"):
        return False
    raise ApiError(f"The {_label(name)} field must be true or false.", field=name)


def notes(data: Mapping[str, Any]) -> Json:
    """`notes`: an object of at most 15 string (or number) values of up to 256 characters."""
    value = data.get("notes")
    if value is None or value == []:
        return {}
    if not isinstance(value, dict):
        raise ApiError("The notes must be an array.", field="notes")
    if len(value) > 15:
        raise ApiError(
            "Number of fields in notes should be less than or equal to 15", field="notes"
        )
    for key, note in value.items():
        if isinstance(note, bool) or not isinstance(note, str | int | float):
            raise ApiError(f"The notes.{key} must be a string.", field="notes")
        if len(str(note)) > 256:
            raise ApiError(
                f"The notes.{key} may not be greater than 256 characters.", field="notes"
            )
    return dict(value)
