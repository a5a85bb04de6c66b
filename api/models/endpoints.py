"""`GET /v1/models` and `GET /v1/models/{id}` in two shapes, told apart by one header:

- with an `anthropic-version` header (the Anthropic SDKs always send it): Anthropic's shape,
  `{"data": [{"type": "model", "id", "display_name", "created_at"}], "has_more", "first_id",
  "last_id"}`;
- without it (OpenAI's SDKs and most OpenAI-compatible tools): OpenAI's shape,
  `{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}`.

Listed: every model in the price book in force that the caller's plan allows (dated ids; an
alias works for `GET /v1/models/{id}`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.errors import NotFound
from api.keys.auth import Caller, Principal
from api.pricing.table import PriceTable
from api.state import State

router = APIRouter(tags=["tenant"])


def _allowed(principal: Principal, model_id: str) -> bool:
    return principal.allowed_models is None or model_id in principal.allowed_models


def _model_ids(prices: PriceTable, principal: Principal) -> list[str]:
    return [m.canonical_id for m in prices.models if _allowed(principal, m.canonical_id)]


def _display_name(model_id: str) -> str:
    """ "claude-sonnet-4-5-20250929" -> "Claude Sonnet 4.5" (the date is left out)."""
    words = [w for w in model_id.split("-") if not (w.isdigit() and len(w) == 8)]
    names = [w.capitalize() for w in words if not w.isdigit()]
    version = ".".join(w for w in words if w.isdigit())
    return " ".join([*names, version] if version else names)


def _entry(model_id: str, created: datetime, anthropic: bool) -> dict[str, Any]:
    if anthropic:
        return {
            "type": "model",
            "id": model_id,
            "display_name": _display_name(model_id),
            "created_at": created.isoformat().replace("+00:00", "Z"),
        }
    created_s = int(created.timestamp())
    return {"id": model_id, "object": "model", "created": created_s, "owned_by": "anthropic"}


def _json(payload: dict[str, Any]) -> Response:
    return Response(json.dumps(payload).encode(), 200, media_type="application/json")


@router.get("/v1/models")
async def list_models(request: Request, caller: Caller, state: State) -> Response:
    anthropic = "anthropic-version" in request.headers
    created = datetime.combine(state.prices.effective_from, time(), UTC)
    ids = _model_ids(state.prices, caller)
    data = [_entry(i, created, anthropic) for i in ids]
    if not anthropic:
        return _json({"object": "list", "data": data})
    first, last = (ids[0], ids[-1]) if ids else (None, None)
    return _json({"data": data, "has_more": False, "first_id": first, "last_id": last})


@router.get("/v1/models/{model_id}")
async def get_model(model_id: str, request: Request, caller: Caller, state: State) -> Response:
    price = state.prices.lookup(model_id)
    known = {m.canonical_id for m in state.prices.models}
    if price is None or price.canonical_id not in known or not _allowed(caller, price.canonical_id):
        raise NotFound(f"model: {model_id}")
    created = datetime.combine(state.prices.effective_from, time(), UTC)
    return _json(_entry(price.canonical_id, created, "anthropic-version" in request.headers))
