"""Strict JSON for OpenAI request bodies: a duplicate key is an error, not "the last one wins",
because whichever copy we kept, the caller may have meant the other."""

from __future__ import annotations

import json
from typing import Any

from api.openai.errors import OpenAIRequestError


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def parse_strict_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; 400 for invalid JSON, a non-object or a duplicate key."""
    try:
        body = json.loads(raw, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as dup:
        raise OpenAIRequestError(
            f"duplicate key {dup.key!r} in the request body", dup.key, "duplicate_key"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise OpenAIRequestError("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise OpenAIRequestError("the request body must be a JSON object")
    return body
