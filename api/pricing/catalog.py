"""`GET /v1/models` and `GET /v1/models/{id}` in Anthropic's shape: the models the caller's
plan allows (ids or patterns) that the book prices now, newest first.

`allowed_models` is the one list both this and an OpenAI-shaped `/v1/models` render."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.errors import InvalidRequest, NotFound
from api.keys.auth import Caller, Principal
from api.pricing.book import PriceBook
from api.pricing.model import ModelPrice
from api.pricing.resolve import model_allowed
from api.state import State

router = APIRouter(tags=["tenant"])


def allowed_models(book: PriceBook, principal: Principal, at: datetime) -> list[ModelPrice]:
    return [
        p for p in book.current(at) if model_allowed(principal.allowed_models, p.model, *p.aliases)
    ]


def model_object(book: PriceBook, price: ModelPrice) -> dict[str, str]:
    created = book.first_seen(price.model).astimezone(UTC)
    return {
        "type": "model",
        "id": price.model,
        "display_name": price.display_name or price.model,
        "created_at": created.isoformat().replace("+00:00", "Z"),
    }


def page(
    items: list[dict[str, str]], limit: int, after_id: str | None, before_id: str | None
) -> dict[str, object]:
    ids = [item["id"] for item in items]
    start, end = 0, len(items)
    if after_id is not None:
        if after_id not in ids:
            raise InvalidRequest(f"after_id: {after_id} is not in the list")
        start = ids.index(after_id) + 1
    if before_id is not None:
        if before_id not in ids:
            raise InvalidRequest(f"before_id: {before_id} is not in the list")
        end = ids.index(before_id)
        start = max(start, end - limit) if after_id is None else start
    chosen = items[start:end][:limit]
    return {
        "data": chosen,
        "has_more": (start + len(chosen) < end) if before_id is None else start > 0,
        "first_id": chosen[0]["id"] if chosen else None,
        "last_id": chosen[-1]["id"] if chosen else None,
    }


@router.get("/v1/models")
async def list_models(
    caller: Caller,
    state: State,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    after_id: str | None = None,
    before_id: str | None = None,
) -> dict[str, object]:
    book = state.prices.book
    items = [model_object(book, p) for p in allowed_models(book, caller, datetime.now(UTC))]
    return page(items, limit, after_id, before_id)


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, caller: Caller, state: State) -> dict[str, str]:
    book = state.prices.book
    price = book.lookup(model_id)
    if price is None or not model_allowed(caller.allowed_models, model_id, price.model):
        raise NotFound(f"model: {model_id}")
    return model_object(book, price)
