"""Admitting a batch: every request checked (custom_id, model allowed and priced, max_tokens,
end user, files it names) and its worst case at batch prices reserved, all in one atomic
database call, before anything is sent upstream. A batch that does not fit is refused whole."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from api.batches import repository
from api.batches.pricing import batch_reservation
from api.errors import InvalidRequest, NotFound, PermissionDenied
from api.files import check_file_refs, file_ids_in
from api.http.docs import MAX_TOKENS
from api.inputs import check_user_id, whole_number
from api.keys.principal import Principal
from api.ledger.functions import Reservation
from api.pricing.book import PriceBook
from api.pricing.resolve import resolve, unknown_model_message
from api.quotas.amounts import reservation
from api.quotas.periods import budget_period
from api.quotas.plans import check_model_allowed
from api.quotas.service import enforce
from api.state import AppState

MAX_REQUESTS = 100_000


@dataclass(frozen=True)
class BatchRequest:
    custom_id: str
    model: str
    user: str | None
    hard: Decimal
    soft: Decimal


def _params(i: int, entry: object) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, dict):
        raise InvalidRequest(f"requests.{i}: expected an object with custom_id and params")
    custom_id = entry.get("custom_id")
    if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 64:
        raise InvalidRequest(f"requests.{i}.custom_id: a string of 1 to 64 characters")
    params = entry.get("params")
    if not isinstance(params, dict):
        raise InvalidRequest(f"requests.{i}.params: Field required")
    return custom_id, params


def _one(
    i: int, entry: object, prices: PriceBook, principal: Principal, at: datetime
) -> BatchRequest:
    custom_id, params = _params(i, entry)
    model = params.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(f"requests.{i}.params.model: Field required")
    max_tokens = whole_number(params.get("max_tokens"))
    if max_tokens is None or not 1 <= max_tokens <= MAX_TOKENS:
        raise InvalidRequest(f"requests.{i}.params.max_tokens: an integer from 1 to {MAX_TOKENS}")
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(f"requests.{i}.params.messages: a non-empty list")
    found = resolve(prices, model, at, family=False)
    ids = (model,) if found is None else (model, found.price.model)
    check_model_allowed(principal, model, *ids)
    if found is None:
        raise NotFound(unknown_model_message(model))
    price = found.price
    user = None
    metadata = params.get("metadata")
    if isinstance(metadata, dict) and metadata.get("user_id") is not None:
        user = check_user_id(metadata["user_id"], f"requests.{i}.params.metadata.user_id")
    hard, soft = reservation(price, json.dumps(params).encode(), params, max_tokens)
    return BatchRequest(
        custom_id, model, user, batch_reservation(price, hard), batch_reservation(price, soft)
    )


def parse_batch(
    body: object, prices: PriceBook, principal: Principal, at: datetime
) -> list[BatchRequest]:
    if principal.reserves_per_request:
        # tollgate_reserve_batch does not check a key's own budget: refuse rather than overshoot
        raise PermissionDenied(
            "message batches are not available to an API key with a monthly budget; "
            "use a key without one"
        )
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise InvalidRequest("requests: Field required (a list)")
    entries: list[object] = body["requests"]
    if not entries or len(entries) > MAX_REQUESTS:
        raise InvalidRequest(f"requests: 1 to {MAX_REQUESTS} requests")
    parsed = [_one(i, entry, prices, principal, at) for i, entry in enumerate(entries)]
    if len({r.custom_id for r in parsed}) != len(parsed):
        raise InvalidRequest("requests: every custom_id must be unique within the batch")
    return parsed


async def admit(
    state: AppState, principal: Principal, body: dict[str, Any], requests: list[BatchRequest]
) -> tuple[uuid.UUID, dict[str, str]]:
    """Check the files, resolve end users, reserve the whole batch (or raise 402/429).
    Returns the batch's Tollgate id and the quota headers."""
    await check_file_refs(state.engine, principal.tenant_id, file_ids_in(body["requests"]))
    users: dict[str, uuid.UUID] = {}
    for name in sorted({r.user for r in requests if r.user is not None}):
        users[name] = await state.users.resolve(principal.tenant_id, name)
    started = datetime.now(UTC)
    period_start, period_end = budget_period(started, principal.billing_period)
    batch_id = uuid.uuid4()
    decision: Reservation = await repository.reserve(
        state.engine,
        batch_id=batch_id,
        principal=principal,
        started=started,
        period=(period_start, period_end),
        owner=state.ledger.writer.owner,
        custom_ids=[r.custom_id for r in requests],
        users=[
            principal.bound_user_id or (users[r.user] if r.user is not None else None)
            for r in requests
        ],
        models=[r.model for r in requests],
        hard=[r.hard for r in requests],
        soft=[r.soft for r in requests],
    )
    state.metrics.reservation("batch", decision.outcome)
    return batch_id, enforce(decision)
