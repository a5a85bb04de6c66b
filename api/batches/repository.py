"""SQL of the batches feature. Reads that serve a tenant take the authenticated tenant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.keys.principal import Principal
from api.ledger.functions import Reservation
from api.pricing.cost import Usage

_RESERVE = text(
    """
    SELECT * FROM tollgate_reserve_batch(
        :batch, :tenant, :key, :started, :period_start, :period_end, :owner,
        CAST(:custom_ids AS text[]), CAST(:users AS uuid[]), CAST(:models AS text[]),
        CAST(:hard AS numeric[]), CAST(:soft AS numeric[]))
    """
)
_SUBMITTED = text(
    "UPDATE batches SET upstream_id = :upstream_id, state = 'submitted', owner = NULL "
    "WHERE id = :id"
)
_RELEASE = text("SELECT tollgate_release_batch(:id, :state)")
_OWNED = text(
    "SELECT * FROM batches WHERE tenant_id = :tenant AND upstream_id = :upstream_id "
    "AND deleted_at IS NULL"
)
_LIST = text(
    "SELECT * FROM batches WHERE tenant_id = :tenant AND upstream_id IS NOT NULL "
    "AND deleted_at IS NULL ORDER BY created_at DESC, id DESC"
)
_DELETED = text("UPDATE batches SET deleted_at = now() WHERE id = :id")
_UNSETTLED = text(
    "SELECT * FROM batches WHERE state = 'submitted' ORDER BY created_at LIMIT :limit"
)
_STALE_SUBMITTING = text(
    "SELECT id FROM batches WHERE state = 'submitting' "
    "AND created_at < now() - make_interval(secs => :age)"
)
_SETTLE = text(
    """
    SELECT tollgate_settle_batch_result(
        :batch, :custom_id, :status, :model, :input_tokens, :output_tokens,
        :cache_write_5m_tokens, :cache_write_1h_tokens, :cache_read_tokens,
        :web_search_requests, :cost_usd, :price_version, :ended_at, :upstream_request_id,
        :error_type)
    """
)
_PROGRESS = text("UPDATE batches SET results_done = GREATEST(results_done, :done) WHERE id = :id")
_UNSEEN = text(
    """
    SELECT r.custom_id, r.model FROM batch_requests r
     WHERE r.batch_id = :id
       AND NOT EXISTS (SELECT 1 FROM usage_ledger l
                        WHERE l.batch_id = r.batch_id AND l.custom_id = r.custom_id)
    """
)
_MODELS = text("SELECT custom_id, model FROM batch_requests WHERE batch_id = :id")


@dataclass(frozen=True)
class BatchRow:
    id: uuid.UUID
    upstream_id: str | None
    tenant_id: uuid.UUID
    state: str
    created_at: datetime
    results_done: int


def _row(r: object) -> BatchRow:
    return BatchRow(
        r.id,  # type: ignore[attr-defined]
        r.upstream_id,  # type: ignore[attr-defined]
        r.tenant_id,  # type: ignore[attr-defined]
        r.state,  # type: ignore[attr-defined]
        r.created_at,  # type: ignore[attr-defined]
        r.results_done,  # type: ignore[attr-defined]
    )


@dataclass(frozen=True)
class ResultRow:
    """One result, priced: what `tollgate_settle_batch_result` writes."""

    custom_id: str
    status: str
    model: str | None
    usage: Usage
    cost_usd: Decimal
    price_version: str | None
    ended_at: datetime
    upstream_request_id: str | None = None
    error_type: str | None = None

    def params(self) -> dict[str, object]:
        u = self.usage
        return {
            "custom_id": self.custom_id,
            "status": self.status,
            "model": self.model,
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "cache_write_5m_tokens": u.cache_write_5m_tokens,
            "cache_write_1h_tokens": u.cache_write_1h_tokens,
            "cache_read_tokens": u.cache_read_tokens,
            "web_search_requests": u.web_search_requests,
            "cost_usd": self.cost_usd,
            "price_version": self.price_version,
            "ended_at": self.ended_at,
            "upstream_request_id": self.upstream_request_id,
            "error_type": self.error_type,
        }


async def reserve(
    engine: AsyncEngine,
    *,
    batch_id: uuid.UUID,
    principal: Principal,
    started: datetime,
    period: tuple[datetime, datetime],
    owner: str,
    custom_ids: list[str],
    users: list[uuid.UUID | None],
    models: list[str],
    hard: list[Decimal],
    soft: list[Decimal],
) -> Reservation:
    params = {
        "batch": batch_id,
        "tenant": principal.tenant_id,
        "key": principal.key_id,
        "started": started,
        "period_start": period[0],
        "period_end": period[1],
        "owner": owner,
        "custom_ids": custom_ids,
        "users": users,
        "models": models,
        "hard": hard,
        "soft": soft,
    }
    async with engine.begin() as conn:
        return Reservation(*(await conn.execute(_RESERVE, params)).one())


async def submitted(engine: AsyncEngine, batch_id: uuid.UUID, upstream_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(_SUBMITTED, {"id": batch_id, "upstream_id": upstream_id})


async def release(engine: AsyncEngine, batch_id: uuid.UUID, state: str) -> None:
    """Give back whatever the batch still holds and close it as `failed` or `settled`."""
    async with engine.begin() as conn:
        await conn.execute(_RELEASE, {"id": batch_id, "state": state})


async def owned(engine: AsyncEngine, tenant_id: uuid.UUID, upstream_id: str) -> BatchRow | None:
    async with engine.connect() as conn:
        found = (
            await conn.execute(_OWNED, {"tenant": tenant_id, "upstream_id": upstream_id})
        ).first()
    return None if found is None else _row(found)


async def list_owned(engine: AsyncEngine, tenant_id: uuid.UUID) -> list[BatchRow]:
    async with engine.connect() as conn:
        return [_row(r) for r in await conn.execute(_LIST, {"tenant": tenant_id})]


async def mark_deleted(engine: AsyncEngine, batch_id: uuid.UUID) -> None:
    async with engine.begin() as conn:
        await conn.execute(_DELETED, {"id": batch_id})


async def unsettled(conn: AsyncConnection, limit: int = 100) -> list[BatchRow]:
    return [_row(r) for r in await conn.execute(_UNSETTLED, {"limit": limit})]


async def stale_submissions(conn: AsyncConnection, age_s: float) -> list[uuid.UUID]:
    return list((await conn.execute(_STALE_SUBMITTING, {"age": age_s})).scalars())


async def request_models(engine: AsyncEngine, batch_id: uuid.UUID) -> dict[str, str]:
    async with engine.connect() as conn:
        return {r.custom_id: r.model for r in await conn.execute(_MODELS, {"id": batch_id})}


async def settle_result(
    engine: AsyncEngine, batch_id: uuid.UUID, result: ResultRow, line_no: int
) -> bool:
    """Write one result's ledger row (at most once ever) and advance the batch's cursor, in
    one transaction. False when it was written before."""
    params = {"batch": batch_id, **result.params()}
    async with engine.begin() as conn:
        written = bool((await conn.execute(_SETTLE, params)).scalar_one())
        await conn.execute(_PROGRESS, {"id": batch_id, "done": line_no})
    return written


async def unseen_requests(engine: AsyncEngine, batch_id: uuid.UUID) -> list[tuple[str, str]]:
    """Requests of the batch that have no ledger row yet."""
    async with engine.connect() as conn:
        return [(r.custom_id, r.model) for r in await conn.execute(_UNSEEN, {"id": batch_id})]
