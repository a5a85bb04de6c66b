"""Reading and validating what a tenant sent, before anything is spent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.errors import InvalidRequest, NotFound
from api.http.jsonbody import parse_json_object
from api.inputs import check_user_id, clip, whole_number
from api.keys.principal import Principal
from api.pricing.book import PriceBook
from api.pricing.resolve import Resolved, resolve, unknown_model_message
from api.quotas.plans import check_model_allowed

MAX_TOKENS_BOUND = 2**31 - 1
MAX_WEB_SEARCHES = 1_000_000
MAX_MODEL_LENGTH = 256


@dataclass(frozen=True)
class MessagesRequest:
    body: dict[str, Any]
    model: str
    max_tokens: int
    stream: bool
    user: str | None
    fast: bool  # speed: "fast" asked for


def check_model(value: object, field: str = "model") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{field}: Field required (a model id)")
    if len(value) > MAX_MODEL_LENGTH:
        raise InvalidRequest(f"{field}: unknown model {clip(value)}")
    return value


def check_max_tokens(value: object, field: str = "max_tokens") -> int:
    number = whole_number(value)
    if number is None or not 1 <= number <= MAX_TOKENS_BOUND:
        raise InvalidRequest(f"{field}: must be an integer from 1 to {MAX_TOKENS_BOUND}")
    return number


def check_tools(body: dict[str, Any]) -> None:
    """`tools` is a list; web search tools' `max_uses` are bounded (they are reserved)."""
    tools = body.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise InvalidRequest("tools: must be a list")
    total = 0
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"tools.{i}: must be an object")
        if tool.get("max_uses") is None:
            continue
        uses = whole_number(tool["max_uses"])
        if uses is None or uses < 1:
            raise InvalidRequest(f"tools.{i}.max_uses: must be a positive integer")
        total += uses
        if total > MAX_WEB_SEARCHES:
            raise InvalidRequest(f"tools: at most {MAX_WEB_SEARCHES} uses in all")


def end_user_of(body: dict[str, Any]) -> str | None:
    metadata = body.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata: must be an object")
    user = metadata.get("user_id")
    return None if user is None else check_user_id(user, "metadata.user_id")


def parse_messages_request(raw: bytes) -> MessagesRequest:
    body = parse_json_object(raw)
    model = check_model(body.get("model"))
    max_tokens = check_max_tokens(body.get("max_tokens"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: Field required (a non-empty list)")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: must be a boolean")
    check_tools(body)
    user = end_user_of(body)
    return MessagesRequest(body, model, max_tokens, stream, user, body.get("speed") == "fast")


def price_for(
    book: PriceBook, principal: Principal, model: str, at: datetime, *, family: bool = False
) -> Resolved:
    """The price in force at `at`, if the tenant's plan (ids or patterns) allows the model —
    by the id asked for or its canonical id — and the book prices it."""
    found = resolve(book, model, at, family=family)
    ids = (model,) if found is None or found.fallback else (model, found.price.model)
    check_model_allowed(principal, model, *ids)
    if found is None:
        raise NotFound(unknown_model_message(model))
    return found
