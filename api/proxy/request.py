"""Reading and validating what a tenant sent, before anything is spent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.errors import InvalidRequest, NotFound, PermissionDenied
from api.keys.principal import Principal
from api.pricing.book import PriceBook
from api.pricing.resolve import Resolved, resolve, unknown_model_message
from api.quotas.plans import model_allowed
from api.tenants.users import check_user_id


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


@dataclass(frozen=True)
class MessagesRequest:
    body: dict[str, Any]
    model: str
    max_tokens: int
    stream: bool
    user: str | None
    fast: bool  # speed: "fast" asked for


def parse_messages_request(raw: bytes) -> MessagesRequest:
    body = parse_json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Field required (a positive integer)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: Field required (a non-empty list)")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: must be a boolean")
    user = None
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and metadata.get("user_id") is not None:
        user = check_user_id(metadata["user_id"], "metadata.user_id")
    return MessagesRequest(body, model, max_tokens, stream, user, body.get("speed") == "fast")


def price_for(
    book: PriceBook, principal: Principal, model: str, at: datetime, *, family: bool = False
) -> Resolved:
    """The price in force at `at`, if the tenant's plan (ids or patterns) allows the model —
    by the id asked for or its canonical id — and the book prices it."""
    found = resolve(book, model, at, family=family)
    ids = (model,) if found is None or found.fallback else (model, found.price.model)
    if not model_allowed(principal.allowed_models, *ids):
        raise PermissionDenied(f"model: {model} is not available on the {principal.plan_code} plan")
    if found is None:
        raise NotFound(unknown_model_message(model))
    return found
