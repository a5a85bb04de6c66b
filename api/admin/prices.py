"""`GET /admin/prices` (the versions in force now), `PUT /admin/prices/{model}` (add a
version; 201 when added, 200 when the same version was already stored) and
`POST /admin/prices/{model}/recost` (re-price settled rows, see api/pricing/recost.py). The
process that took the PUT reloads its book at once; every other replica within its refresh
interval."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api.auth.admin import Admin, AdminJsonObject, require_admin
from api.errors import InvalidRequest
from api.http.docs import json_body
from api.inputs import MODEL_ID_PATTERN
from api.pricing.docs import PRICE_BODY, RECOST_BODY
from api.pricing.model import PriceError, parse_price, price_to_json
from api.pricing.recost import parse_instant, recost, report_to_json
from api.pricing.service import put_price
from api.state import State

# Fields a PUT may leave out to keep the model's current values. Token rates are not among them:
# omitted cache rates follow the new input rate (1.25x / 2x / 0.1x).
CARRIED_OVER = (
    "aliases",
    "display_name",
    "tiers",
    "fast_multiplier",
    "geo_multipliers",
    "batch_discount",
    "web_search_per_1000",
    "code_execution_per_hour",
)

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.get("/prices")
async def get_prices(state: State) -> dict[str, list[dict[str, object]]]:
    return {"models": [price_to_json(p) for p in state.prices.book.current()]}


ModelId = Annotated[str, Path(pattern=MODEL_ID_PATTERN)]


@router.put("/prices/{model}", openapi_extra=json_body(PRICE_BODY))
async def put_model_price(
    model: ModelId,
    response: Response,
    state: State,
    admin: Admin,
    body: AdminJsonObject,
) -> dict[str, object]:
    book = state.prices.book
    canonical = book.canonical(model) or model  # a PUT to an alias changes its model
    if body.get("model") not in (None, model, canonical):
        raise InvalidRequest("model: the body names another model than the path")
    entry = {k: v for k, v in body.items() if k not in ("version", "model")}
    current = book.lookup(canonical)
    previous = price_to_json(current) if current is not None else None
    if previous is not None:  # what the body leaves out carries over (rates excepted)
        entry = {k: previous[k] for k in CARRIED_OVER if k in previous} | entry
    try:
        price = parse_price(entry, canonical)
    except PriceError as exc:
        raise InvalidRequest(str(exc)) from None
    stored, created = await put_price(state.engine, price, admin, previous)
    await state.prices.refresh()
    response.status_code = 201 if created else 200
    return price_to_json(stored)


@router.post("/prices/{model}/recost", openapi_extra=json_body(RECOST_BODY))
async def recost_model(
    model: ModelId,
    state: State,
    admin: Admin,
    body: AdminJsonObject,
) -> dict[str, object]:
    """`{"from", "to"}` (ISO dates or datetimes, UTC; `to` exclusive) → the recorded re-cost."""
    bounds = []
    for name in ("from", "to"):
        value = body.get(name)
        if not isinstance(value, str):
            raise InvalidRequest(f"{name}: required, an ISO 8601 date or datetime")
        bounds.append(parse_instant(name, value))
    report = await recost(state.engine, model, bounds[0], bounds[1], admin)
    return report_to_json(report)
