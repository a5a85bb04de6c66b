"""JSON in and out of the OpenAI route. In: strict, by the gateway's one set of rules
(`api/http/jsonbody.py`: a duplicate key anywhere, NaN/Infinity or too deep a nesting is
refused), with the refusal as an OpenAI-shaped 400. Out: UTF-8 with non-ASCII characters kept
as they are, from one encoder (`json.dumps` with any option builds a new encoder per call,
which costs more than encoding a small body)."""

from __future__ import annotations

import json
from typing import Any

from api.errors import InvalidRequest
from api.http.jsonbody import parse_json_object
from api.openai.errors import OpenAIRequestError

_ENCODER = json.JSONEncoder(ensure_ascii=False)


def dumps(value: object) -> bytes:
    """`json.dumps(value, ensure_ascii=False).encode()`, without building an encoder."""
    return _ENCODER.encode(value).encode()


def parse_strict_object(raw: bytes, what: str = "request body") -> dict[str, Any]:
    try:
        return parse_json_object(raw, what)
    except InvalidRequest as exc:
        raise OpenAIRequestError(exc.message) from None
