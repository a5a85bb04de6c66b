"""Input rules shared by every route: names, user ids and event ids are text of bounded length
with no control characters and no lone surrogates (they cannot be stored or logged safely), and
unknown values are echoed back only in part."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from api.errors import InvalidRequest

MAX_USER_ID_LENGTH = 256
MAX_NAME_LENGTH = 256
ECHO_LIMIT = 64

# C0 and C1 control characters and DEL; lone surrogates are caught by the UTF-8 check.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# (Lone surrogates cannot be sent as UTF-8 JSON, so the patterns need not mention them.)
_TEXT_CHAR = r"[^\x00-\x1f\x7f-\x9f]"
_VISIBLE_CHAR = r"[^\s\x00-\x1f\x7f-\x9f]"
TEXT_PATTERN = f"^{_TEXT_CHAR}*$"
"""The JSON Schema pattern of acceptable text: no control character."""
NAME_PATTERN = f"^{_TEXT_CHAR}*{_VISIBLE_CHAR}{_TEXT_CHAR}*$"
"""Acceptable text that is not only whitespace (names are stripped, then must be non-empty)."""


MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@\-\[\]]{0,127}$"
"""A model id or alias as the price book accepts it."""

INSTANT_PATTERN = (
    r"^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
)
"""The documented form of an ISO 8601 date or UTC datetime parameter. The parsers accept more
(any valid ISO 8601 date or datetime); this is the part a client can rely on."""


def text_schema(max_length: int, pattern: str = TEXT_PATTERN) -> dict[str, object]:
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": pattern}


def whole_number(value: object) -> int | None:
    """`value` as an int if it is a JSON integer: an int, or a number with no fractional part
    (JSON Schema's `integer`: 1024.0 is one); else None. Never a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def clip(value: object, limit: int = ECHO_LIMIT) -> str:
    """`value` for an error message: the repr of at most `limit` characters of it."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:limit]) + ("…" if len(text) > limit else "")


def text_problem(value: str, max_length: int) -> str | None:
    """Why `value` is not acceptable text, or None."""
    if not 1 <= len(value) <= max_length:
        return f"must be 1 to {max_length} characters"
    if _CONTROL.search(value):
        return "must not contain control characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def check_text(value: object, field: str, max_length: int) -> str:
    """`value` if it is acceptable text, else a 400 naming `field`."""
    if not isinstance(value, str):
        raise InvalidRequest(f"{field}: must be a string")
    problem = text_problem(value, max_length)
    if problem is not None:
        raise InvalidRequest(f"{field}: {problem}")
    return value


def check_user_id(value: object, field: str) -> str:
    return check_text(value, field, MAX_USER_ID_LENGTH)


def _clean(value: str) -> str:
    problem = text_problem(value, MAX_NAME_LENGTH)
    if problem is not None:
        raise PydanticCustomError("text", problem)
    return value


CleanText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(_clean),
    WithJsonSchema(text_schema(MAX_NAME_LENGTH, NAME_PATTERN)),
]
"""A name or label: 1 to 256 characters, no control characters, valid Unicode."""


def _user_id(value: str) -> str:
    problem = text_problem(value, MAX_USER_ID_LENGTH)
    if problem is not None:
        raise PydanticCustomError("text", problem)
    return value


UserId = Annotated[str, AfterValidator(_user_id), WithJsonSchema(text_schema(MAX_USER_ID_LENGTH))]
"""An end user's id: 1 to 256 characters, no control characters, valid Unicode."""
