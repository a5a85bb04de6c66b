"""The metered request path shared by /v1/messages and /chat: admit the request (reserve, or
refuse with 402/429), then call the upstream inside the admitted request's owner, which settles
the ledger row once whatever happens (see api/ledger/metered.py)."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.db.errors import DB_ERRORS, unavailable
from api.errors import InvalidRequest
from api.keys.principal import Principal
from api.ledger.functions import OpenRequest
from api.ledger.metered import MeteredRequest
from api.metering.meter import UsageMeter
from api.proxy.request import price_for
from api.proxy.stream import MeteredStream
from api.proxy.upstream import open_stream, read_whole
from api.quotas.amounts import reservation
from api.quotas.periods import budget_period
from api.quotas.service import enforce
from api.settings import DisconnectMode, UnknownModelMode
from api.state import AppState

log = logging.getLogger(__name__)

MESSAGES_PATH = "/v1/messages"
NON_STREAMING_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class WholeResponse:
    status: int
    body: bytes
    headers: dict[str, str]


async def begin(
    state: AppState,
    principal: Principal,
    model: str,
    user: str | None,
    endpoint: str,
    *,
    raw_body: bytes,
    body: dict[str, Any],
    max_tokens: int,
) -> MeteredRequest:
    """Validate the model, resolve the end user, check every limit and reserve the worst
    case, writing the in-flight ledger row — or refuse with 402/429 before anything is spent.
    Use the result as `async with metered:` around everything that follows."""
    started_at = datetime.now(UTC)
    resolved = price_for(
        state.prices.book,
        principal,
        model,
        started_at,
        family=state.settings.unknown_model is UnknownModelMode.family,
    )
    price = resolved.price
    if resolved.fallback:
        log.warning("model %s is not in the price book; priced as %s", model, price.model)
        state.metrics.unknown_model_fallbacks.labels(model).inc()
    if body.get("speed") == "fast" and price.fast_multiplier is None:
        raise InvalidRequest(
            f"speed: fast mode has no price for {price.model} in this gateway's price book; "
            f"an operator can add a fast_multiplier with PUT /admin/prices/{price.model}"
        )
    hard, soft = reservation(price, raw_body, body, max_tokens)
    end_user_id = principal.bound_user_id
    if end_user_id is None and user is not None:
        try:
            end_user_id = await state.users.resolve(principal.tenant_id, user)
        except DB_ERRORS as exc:
            raise unavailable(exc) from None
    period_start, period_end = budget_period(started_at, principal.billing_period)
    row = OpenRequest(
        id=uuid.uuid4(),
        tenant_id=principal.tenant_id,
        api_key_id=principal.key_id,
        end_user_id=end_user_id,
        endpoint=endpoint,
        model=model,
        started_at=started_at,
        owner=state.ledger.writer.owner,
        period_start=period_start,
        period_end=period_end,
        hard_usd=hard,
        soft_usd=soft,
    )
    return await state.ledger.admit(row, price, enforce, per_request=principal.reserves_per_request)


async def start_stream(
    state: AppState, metered: MeteredRequest, body: bytes, headers: dict[str, str]
) -> MeteredStream:
    """Open the upstream stream (raising a refusal, timeout or outage) and hand it to a pump
    that the request owns."""
    timeout = float(state.settings.upstream_timeout_s)
    opened = await open_stream(state.upstream, MESSAGES_PATH, body, headers, timeout)
    drain = state.settings.on_disconnect is DisconnectMode.drain
    return MeteredStream(metered, opened, drain_on_disconnect=drain)


async def call_whole(
    state: AppState, metered: MeteredRequest, body: bytes, headers: dict[str, str]
) -> WholeResponse:
    """A non-streaming call, metered from the final Message's usage."""
    timeout = max(float(state.settings.upstream_timeout_s), NON_STREAMING_TIMEOUT_S)
    response, content = await read_whole(state.upstream, MESSAGES_PATH, body, headers, timeout)
    meter = UsageMeter()
    try:
        message = json.loads(content)
        meter.observe_message(message)
    except ValueError:
        message = None
    ok = isinstance(message, dict) and message.get("type") == "message"
    rid = response.headers.get("request-id")
    await metered.settle(
        meter.usage,
        "ok" if ok else "incomplete",
        http_status=response.status_code,
        upstream_request_id=rid,
        error_type=meter.error_type,
    )
    headers = {"content-type": response.headers.get("content-type", "application/json")}
    if rid:
        headers["request-id"] = rid
    return WholeResponse(response.status_code, content, headers)
