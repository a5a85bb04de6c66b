"""Strict JSON for OpenAI request bodies, by the gateway's one set of rules
(`api/http/jsonbody.py`: a duplicate key anywhere, NaN/Infinity or too deep a nesting is
refused), with the refusal as an OpenAI-shaped 400."""

from __future__ import annotations

from typing import Any

from api.errors import InvalidRequest
from api.http.jsonbody import parse_json_object
from api.openai.errors import OpenAIRequestError


def parse_strict_object(raw: bytes, what: str = "request body") -> dict[str, Any]:
    try:
        return parse_json_object(raw, what)
    except InvalidRequest as exc:
        raise OpenAIRequestError(exc.message) from None
