"""`GET /v1/models` and `GET /v1/models/{id}` in two shapes, told apart by one header:

- with an `anthropic-version` header (the Anthropic SDKs always send it): Anthropic's shape,
  `{"data": [{"type": "model", "id", "display_name", "created_at"}], "has_more", "first_id",
  "last_id"}`, paged like Anthropic's list: `limit` (1-1000, default 20), `after_id` (the page
  after that id), `before_id` (the page before it); `has_more` is about the direction asked;
- without it (OpenAI's SDKs and most OpenAI-compatible tools): OpenAI's shape,
  `{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}`, unpaged
  (OpenAI's list has no paging).
Errors follow the same rule (OpenAI's error shape without the header).

Listed: every model in the price book in force that the caller's plan allows (dated ids; an
alias works for `GET /v1/models/{id}`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.auth.tenant import Caller
from api.errors import InvalidRequest, NotFound
from api.keys.principal import Principal
from api.openai.routing import ANTHROPIC_CLIENT_HEADER, OpenAIUnlessAnthropicRoute
from api.pagination import PageError, paginate
from api.pricing.book import PriceBook
from api.pricing.model import ModelPrice
from api.quotas.plans import allows
from api.state import State

router = APIRouter(tags=["tenant"], route_class=OpenAIUnlessAnthropicRoute)
_PAGE_PARAMS = ("limit", "after_id", "before_id")


def _visible(book: PriceBook, principal: Principal) -> list[ModelPrice]:
    """The models priced now that the caller's plan and key allow, newest release first."""
    return [p for p in book.current() if allows(principal, *p.ids)]


def _display_name(model_id: str) -> str:
    """ "claude-sonnet-4-5-20250929" -> "Claude Sonnet 4.5" (the date is left out)."""
    words = [w for w in model_id.split("-") if not (w.isdigit() and len(w) == 8)]
    names = [w.capitalize() for w in words if not w.isdigit()]
    version = ".".join(w for w in words if w.isdigit())
    return " ".join([*names, version] if version else names)


def _entry(price: ModelPrice, created: datetime, anthropic: bool) -> dict[str, Any]:
    if anthropic:
        return {
            "type": "model",
            "id": price.model,
            "display_name": price.display_name or _display_name(price.model),
            "created_at": created.isoformat().replace("+00:00", "Z"),
        }
    created_s = int(created.timestamp())
    return {"id": price.model, "object": "model", "created": created_s, "owned_by": "anthropic"}


def _json(payload: dict[str, Any]) -> Response:
    return Response(json.dumps(payload).encode(), 200, media_type="application/json")


@router.get("/v1/models")
async def list_models(request: Request, caller: Caller, state: State) -> Response:
    anthropic = ANTHROPIC_CLIENT_HEADER in request.headers
    book = state.prices.book
    prices = _visible(book, caller)
    data = [_entry(p, book.first_seen(p.model), anthropic) for p in prices]
    if not anthropic:
        return _json({"object": "list", "data": data})
    query = {k: v for k, v in request.query_params.items() if k in _PAGE_PARAMS}
    try:
        return _json(paginate(data, query))
    except PageError as exc:
        raise InvalidRequest(str(exc)) from None


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, request: Request, caller: Caller, state: State) -> Response:
    book = state.prices.book
    price = book.lookup(model_id)
    if price is None or not allows(caller, *price.ids):
        raise NotFound(f"model: {model_id}")
    created = book.first_seen(price.model)
    return _json(_entry(price, created, ANTHROPIC_CLIENT_HEADER in request.headers))
