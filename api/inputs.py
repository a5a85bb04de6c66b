"""Input rules shared by every route: names, user ids and event ids are text of bounded length
with no control characters and no lone surrogates (they cannot be stored or logged safely), and
unknown values are echoed back only in part."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints
from pydantic_core import PydanticCustomError

from api.errors import InvalidRequest

MAX_USER_ID_LENGTH = 256
MAX_NAME_LENGTH = 256
ECHO_LIMIT = 64

# C0 and C1 control characters and DEL; lone surrogates are caught by the UTF-8 check.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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
]
"""A name or label: 1 to 256 characters, no control characters, valid Unicode."""


def _user_id(value: str) -> str:
    problem = text_problem(value, MAX_USER_ID_LENGTH)
    if problem is not None:
        raise PydanticCustomError("text", problem)
    return value


UserId = Annotated[str, AfterValidator(_user_id)]
"""An end user's id: 1 to 256 characters, no control characters, valid Unicode."""
