"""Settling an ended batch: each result line becomes one ledger row — succeeded: priced from
its usage at the batch discount, with the price version in force when the batch was created;
errored, canceled, expired: cost 0, reservation released. Exactly once: the ledger's unique
(batch_id, custom_id) refuses a second row, and the batch's cursor (`results_done`, committed
with each row) lets a restarted settler skip what was done. Requests the results never mention
are settled as `expired`."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.batches import repository
from api.batches.pricing import batch_cost
from api.batches.repository import BatchRow, ResultRow
from api.errors import BadGateway
from api.metering.meter import UsageMeter
from api.passthrough import Refused, open_upstream
from api.pricing.book import PriceBook
from api.pricing.cost import Usage
from api.upstream_client import UpstreamClient

log = logging.getLogger(__name__)

_STATUS = {"succeeded": "ok", "errored": "upstream_error", "canceled": "canceled"}


def _zero(custom_id: str, status: str, model: str | None, error: str | None) -> ResultRow:
    now = datetime.now(UTC)
    return ResultRow(custom_id, status, model, Usage(), Decimal(0), None, now, error_type=error)


def _error_type(result: dict[str, Any]) -> str | None:
    outer = result.get("error")
    inner = outer.get("error") if isinstance(outer, dict) else None
    kind = inner.get("type") if isinstance(inner, dict) else None
    return kind if isinstance(kind, str) else None


def price_result(
    line: dict[str, Any], models: dict[str, str], prices: PriceBook, started: datetime
) -> ResultRow:
    """The ledger row one results line stands for."""
    custom_id = str(line.get("custom_id"))
    result = line.get("result") if isinstance(line.get("result"), dict) else {}
    assert isinstance(result, dict)
    kind = result.get("type")
    model = models.get(custom_id)
    if kind != "succeeded" or not isinstance(result.get("message"), dict):
        status = _STATUS.get(str(kind), "expired")
        return _zero(custom_id, status, model, _error_type(result) if kind == "errored" else None)
    message: dict[str, Any] = result["message"]
    meter = UsageMeter()
    meter.observe_message(message)
    usage = meter.usage
    price = prices.lookup(model, started) if model is not None else None
    if price is None:
        log.error("batch result for an unpriced model %r; recorded at 0", model)
        cost = Decimal(0)
    else:
        cost = batch_cost(price, usage)
    version = price.version if price is not None else None
    upstream_id = str(message.get("id")) if message.get("id") else None
    return ResultRow(custom_id, "ok", model, usage, cost, version, datetime.now(UTC), upstream_id)


async def settle_batch(
    engine: AsyncEngine, upstream: UpstreamClient, prices: PriceBook, batch: BatchRow
) -> int:
    """Settle an ended batch from its results; returns how many rows this call wrote."""
    assert batch.upstream_id is not None
    models = await repository.request_models(engine, batch.id)
    path = f"/v1/messages/batches/{batch.upstream_id}/results"
    opened = await open_upstream(upstream, "GET", path, headers={})
    written = 0
    if isinstance(opened, Refused):
        if opened.status != 404:
            raise BadGateway(f"results of {batch.upstream_id}: upstream status {opened.status}")
        log.warning("results of batch %s are gone upstream; settling as expired", batch.upstream_id)
    else:
        try:
            line_no = 0
            async for raw in opened.aiter_lines():
                if not raw.strip():
                    continue
                line_no += 1
                if line_no <= batch.results_done:
                    continue  # settled by an earlier run
                row = price_result(json.loads(raw), models, prices, batch.created_at)
                written += await repository.settle_result(engine, batch.id, row, line_no)
        finally:
            await opened.aclose()
    for custom_id, model in await repository.unseen_requests(engine, batch.id):
        row = _zero(custom_id, "expired", model, None)
        written += await repository.settle_result(engine, batch.id, row, 0)
    await repository.release(engine, batch.id, "settled")
    return written
