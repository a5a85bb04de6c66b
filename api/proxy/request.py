"""Reading and validating what a tenant sent, before anything is spent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from api.errors import InvalidRequest, NotFound
from api.keys.principal import Principal
from api.pricing.table import ModelPrice, PriceTable
from api.quotas.plans import check_model_allowed
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
    return MessagesRequest(body, model, max_tokens, stream, user)


def price_for(prices: PriceTable, principal: Principal, model: str) -> ModelPrice:
    """The model's price, if the model is known and the tenant's plan allows it."""
    check_model_allowed(principal, model)
    price = prices.lookup(model)
    if price is None:
        raise NotFound(f"model: {model}")
    return price
