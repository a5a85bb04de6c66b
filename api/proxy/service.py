"""The metered request path shared by /v1/messages and /chat: open the ledger row, call the
upstream, and make sure every outcome — stream, refusal, timeout, unreachable — settles it."""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from api.db.errors import DB_ERRORS, unavailable
from api.errors import BadGateway, InvalidRequest, TollgateError, UpstreamTimeout
from api.keys.auth import Principal
from api.ledger.functions import OpenRequest
from api.metering.call import CallContext, MeteredCall, build_settlement
from api.metering.meter import UsageMeter
from api.proxy.request import price_for
from api.proxy.upstream import (
    FirstByteTimeout,
    UpstreamRefused,
    UpstreamUnreachable,
    open_stream,
    read_whole,
)
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
) -> CallContext:
    """Validate the model, resolve the end user, check every limit and reserve the worst
    case, writing the in-flight ledger row — or refuse with 402/429 before anything is spent."""
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
    request_id = uuid.uuid4()
    decision = await state.writer.open(
        OpenRequest(
            id=request_id,
            tenant_id=principal.tenant_id,
            api_key_id=principal.key_id,
            end_user_id=end_user_id,
            endpoint=endpoint,
            model=model,
            started_at=started_at,
            owner=state.writer.owner,
            period_start=period_start,
            period_end=period_end,
            hard_usd=hard,
            soft_usd=soft,
        )
    )
    state.metrics.reservation(endpoint, decision.outcome)
    return CallContext(
        request_id=request_id,
        endpoint=endpoint,
        model=model,
        price=price,
        price_version=price.version,
        started_at=started_at,
        started_mono=time.monotonic(),
        headers=enforce(decision),
    )


async def _settle_without_stream(
    state: AppState,
    ctx: CallContext,
    status: str,
    *,
    http_status: int | None = None,
    error_type: str | None = None,
    meter: UsageMeter | None = None,
    upstream_request_id: str | None = None,
) -> None:
    settlement = build_settlement(
        ctx,
        meter or UsageMeter(),
        status,
        first_chunk_mono=None,
        upstream_request_id=upstream_request_id,
        http_status=http_status,
        error_type=error_type,
    )
    duration_s = time.monotonic() - ctx.started_mono
    state.metrics.settled(ctx.endpoint, settlement, duration_s=duration_s, ttft_s=None)
    await state.writer.settle(settlement)


async def _on_failure(state: AppState, ctx: CallContext, exc: Exception) -> TollgateError:
    if isinstance(exc, FirstByteTimeout):
        await _settle_without_stream(state, ctx, "timeout", error_type="timeout_error")
        return UpstreamTimeout("the upstream did not answer in time")
    await _settle_without_stream(state, ctx, "upstream_error", error_type="api_connection_error")
    return BadGateway("the upstream could not be reached")


async def start_stream(
    state: AppState, ctx: CallContext, body: bytes, headers: dict[str, str]
) -> MeteredCall | UpstreamRefused:
    timeout = float(state.settings.upstream_timeout_s)
    try:
        opened = await open_stream(state.upstream, MESSAGES_PATH, body, headers, timeout)
    except (FirstByteTimeout, UpstreamUnreachable) as exc:
        raise await _on_failure(state, ctx, exc) from None
    if isinstance(opened, UpstreamRefused):
        await _settle_without_stream(
            state,
            ctx,
            "upstream_error",
            http_status=opened.status,
            error_type=opened.error_type,
            upstream_request_id=opened.headers.get("request-id"),
        )
        return opened
    return MeteredCall(
        ctx,
        opened.response,
        opened.chunks,
        opened.first_chunk,
        state.writer,
        state.metrics,
        drain_on_disconnect=state.settings.on_disconnect is DisconnectMode.drain,
    )


async def call_whole(
    state: AppState, ctx: CallContext, body: bytes, headers: dict[str, str]
) -> WholeResponse:
    """A non-streaming call, metered from the final Message's usage."""
    timeout = max(float(state.settings.upstream_timeout_s), NON_STREAMING_TIMEOUT_S)
    try:
        result = await read_whole(state.upstream, MESSAGES_PATH, body, headers, timeout)
    except (FirstByteTimeout, UpstreamUnreachable) as exc:
        raise await _on_failure(state, ctx, exc) from None
    if isinstance(result, UpstreamRefused):
        await _settle_without_stream(
            state,
            ctx,
            "upstream_error",
            http_status=result.status,
            error_type=result.error_type,
            upstream_request_id=result.headers.get("request-id"),
        )
        return WholeResponse(result.status, result.body, result.headers)
    response, content = result
    meter = UsageMeter()
    try:
        message = json.loads(content)
        meter.observe_message(message)
    except ValueError:
        message = None
    ok = isinstance(message, dict) and message.get("type") == "message"
    rid = response.headers.get("request-id")
    await _settle_without_stream(
        state,
        ctx,
        "ok" if ok else "incomplete",
        http_status=response.status_code,
        meter=meter,
        upstream_request_id=rid,
    )
    headers = {"content-type": response.headers.get("content-type", "application/json")}
    if rid:
        headers["request-id"] = rid
    return WholeResponse(response.status_code, content, headers)
