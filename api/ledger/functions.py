"""Ledger writes: the in-flight row opened before the upstream call, and the settle that makes
it final. Settling is idempotent (it only touches a row still `in_flight`), which is what lets a
spooled record be replayed any number of times and still count once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_RESERVE = text(
    """
    SELECT * FROM tollgate_reserve(
        :id, :tenant_id, :api_key_id, :end_user_id, :endpoint, :model, :started_at,
        :period_start, :period_end, :hard_usd, :soft_usd, :owner)
    """
)

_SETTLE = text(
    """
    SELECT tollgate_settle(
        :id, :status, :model, :input_tokens, :output_tokens, :cache_write_5m_tokens,
        :cache_write_1h_tokens, :cache_read_tokens, :web_search_requests, :cost_usd,
        :price_version, :first_token_at, :ended_at, :upstream_request_id, :http_status,
        :error_type, :speed, :inference_geo)
    """
)


_SETTLE_MANY = text(
    """
    SELECT count(*) FILTER (WHERE tollgate_settle(
        s.id, s.status, s.model, s.input_tokens, s.output_tokens, s.cw5m, s.cw1h, s.cread,
        s.web, s.cost_usd, s.price_version, s.first_token_at, s.ended_at,
        s.upstream_request_id, s.http_status, s.error_type, s.speed, s.inference_geo))
    FROM unnest(
        CAST(:id AS uuid[]), CAST(:status AS text[]), CAST(:model AS text[]),
        CAST(:input_tokens AS bigint[]), CAST(:output_tokens AS bigint[]),
        CAST(:cw5m AS bigint[]), CAST(:cw1h AS bigint[]), CAST(:cread AS bigint[]),
        CAST(:web AS bigint[]), CAST(:cost_usd AS numeric[]), CAST(:price_version AS text[]),
        CAST(:first_token_at AS timestamptz[]), CAST(:ended_at AS timestamptz[]),
        CAST(:upstream_request_id AS text[]), CAST(:http_status AS integer[]),
        CAST(:error_type AS text[]), CAST(:speed AS text[]), CAST(:inference_geo AS text[])
    ) WITH ORDINALITY AS s(id, status, model, input_tokens, output_tokens, cw5m, cw1h, cread,
                           web, cost_usd, price_version, first_token_at, ended_at,
                           upstream_request_id, http_status, error_type, speed, inference_geo,
                           n)
    """
)
_START_LEASED_MANY = text(
    """
    INSERT INTO usage_ledger (id, tenant_id, api_key_id, end_user_id, endpoint, model, status,
                              started_at, owner, reserved_usd, period_start, lease_id)
    SELECT s.id, s.tenant_id, s.api_key_id, s.end_user_id, s.endpoint, s.model, 'in_flight',
           s.started_at, :owner, 0, s.period_start, s.lease_id
    FROM unnest(
        CAST(:id AS uuid[]), CAST(:tenant_id AS uuid[]), CAST(:api_key_id AS uuid[]),
        CAST(:end_user_id AS uuid[]), CAST(:endpoint AS text[]), CAST(:model AS text[]),
        CAST(:started_at AS timestamptz[]), CAST(:period_start AS timestamptz[]),
        CAST(:lease_id AS uuid[])
    ) AS s(id, tenant_id, api_key_id, end_user_id, endpoint, model, started_at, period_start,
           lease_id)
    ON CONFLICT (id) DO NOTHING
    """
)
_OWN_IN_FLIGHT = text(
    "SELECT id FROM usage_ledger WHERE status = 'in_flight' AND owner = :owner "
    "AND endpoint <> 'batch' AND lease_id IS NULL"
)
_VOID = text("SELECT tollgate_void(:id)")


@dataclass(frozen=True)
class OpenRequest:
    id: uuid.UUID
    tenant_id: uuid.UUID
    api_key_id: uuid.UUID
    end_user_id: uuid.UUID | None
    endpoint: str
    model: str
    started_at: datetime
    owner: str
    period_start: datetime
    period_end: datetime
    hard_usd: Decimal  # the worst-case cost (hard mode reserves this)
    soft_usd: Decimal  # the estimate (soft mode reserves this)


@dataclass(frozen=True)
class Reservation:
    """What `tollgate_reserve` decided, and where the tenant stands."""

    outcome: str  # ok | budget | user_budget | key_budget | rate | concurrency
    retry_after: int
    budget: Decimal
    spent: Decimal
    reserved: Decimal
    rpm: int
    rpm_used: int | None
    concurrency: int
    in_flight: int
    user_budget: Decimal | None
    user_spent: Decimal | None
    key_budget: Decimal | None = None  # the key's own monthly budget, if it has one
    key_spent: Decimal | None = None


@dataclass(frozen=True)
class Settlement:
    """Everything the final ledger row says. JSON-serialisable via :meth:`to_json`."""

    id: uuid.UUID
    status: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    cache_read_tokens: int
    web_search_requests: int
    cost_usd: Decimal
    price_version: str | None
    first_token_at: datetime | None
    ended_at: datetime
    upstream_request_id: str | None
    http_status: int | None
    error_type: str | None
    speed: str | None = None
    inference_geo: str | None = None

    def params(self) -> dict[str, Any]:
        return _shallow(self)

    def to_json(self) -> dict[str, Any]:
        out = _shallow(self)
        out["id"] = str(self.id)
        out["cost_usd"] = str(self.cost_usd)
        for name in ("first_token_at", "ended_at"):
            value = out[name]
            out[name] = value.isoformat() if value is not None else None
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Settlement:
        # Records spooled before speed/inference_geo existed lack them; journal records also
        # say their kind and tenant (api/ledger/batcher.py), which are not columns of the row.
        values = {k: v for k, v in raw.items() if k not in ("kind", "tenant_id")}
        values["id"] = uuid.UUID(values["id"])
        values["cost_usd"] = Decimal(values["cost_usd"])
        for name in ("first_token_at", "ended_at"):
            if values[name] is not None:
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


async def reserve(conn: AsyncConnection, row: OpenRequest) -> Reservation:
    """Check every limit and, if all pass, reserve and open the in-flight row (one round trip)."""
    found = (await conn.execute(_RESERVE, _shallow(row))).one()
    return Reservation(*found)


async def settle(conn: AsyncConnection, settlement: Settlement) -> bool:
    """Make the row final and move its reservation to spend. True if this call settled it,
    False if it already was (a replay)."""
    return bool((await conn.execute(_SETTLE, settlement.params())).scalar_one())


async def settle_many(
    conn: AsyncConnection, settlements: list[tuple[uuid.UUID, Settlement]]
) -> int:
    """Settle many rows, given as (tenant id, settlement), in one statement (a batch flush);
    how many this call settled. Sorted by tenant, so concurrent batches take the counter row
    locks in one global order (no deadlock between two processes flushing at once)."""
    if not settlements:
        return 0
    rows = [s for _, s in sorted(settlements, key=lambda ts: (str(ts[0]), str(ts[1].id)))]
    columns = {
        "id": [r.id for r in rows],
        "status": [r.status for r in rows],
        "model": [r.model for r in rows],
        "input_tokens": [r.input_tokens for r in rows],
        "output_tokens": [r.output_tokens for r in rows],
        "cw5m": [r.cache_write_5m_tokens for r in rows],
        "cw1h": [r.cache_write_1h_tokens for r in rows],
        "cread": [r.cache_read_tokens for r in rows],
        "web": [r.web_search_requests for r in rows],
        "cost_usd": [r.cost_usd for r in rows],
        "price_version": [r.price_version for r in rows],
        "first_token_at": [r.first_token_at for r in rows],
        "ended_at": [r.ended_at for r in rows],
        "upstream_request_id": [r.upstream_request_id for r in rows],
        "http_status": [r.http_status for r in rows],
        "error_type": [r.error_type for r in rows],
        "speed": [r.speed for r in rows],
        "inference_geo": [r.inference_geo for r in rows],
    }
    return int((await conn.execute(_SETTLE_MANY, columns)).scalar_one())


async def start_leased_many(
    conn: AsyncConnection, owner: str, rows: list[OpenRequest], lease_ids: list[uuid.UUID]
) -> None:
    """Write the in-flight rows of requests admitted against leases, in one statement
    (idempotent by request id, so a journal replay is harmless)."""
    if not rows:
        return
    columns = {
        "owner": owner,
        "id": [r.id for r in rows],
        "tenant_id": [r.tenant_id for r in rows],
        "api_key_id": [r.api_key_id for r in rows],
        "end_user_id": [r.end_user_id for r in rows],
        "endpoint": [r.endpoint for r in rows],
        "model": [r.model for r in rows],
        "started_at": [r.started_at for r in rows],
        "period_start": [r.period_start for r in rows],
        "lease_id": lease_ids,
    }
    await conn.execute(_START_LEASED_MANY, columns)


async def own_in_flight(conn: AsyncConnection, owner: str) -> list[uuid.UUID]:
    """The ids of `owner`'s per-request in-flight rows (batch rows, settled by the batch
    settler, and lease-admitted rows, which reserved nothing of their own, aside)."""
    return list((await conn.execute(_OWN_IN_FLIGHT, {"owner": owner})).scalars())


async def void(conn: AsyncConnection, request_id: uuid.UUID) -> bool:
    """Undo a reservation whose request never reached the upstream: delete the in-flight row
    and release its reservation and slot. False if the row is not in flight (any more)."""
    return bool((await conn.execute(_VOID, {"id": request_id})).scalar_one())


def _shallow(obj: OpenRequest | Settlement | Reservation) -> dict[str, Any]:
    """Field values as a dict, without `asdict`'s deep copy (this runs twice per request)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


SQL_FUNCTIONS = (
    "tollgate_reserve",
    "tollgate_settle",
    "tollgate_void",
    "tollgate_lease_return",
    "tollgate_reap_leases",
    "tollgate_lease_refill",
    "tollgate_reserve_batch",
    "tollgate_settle_batch_result",
    "tollgate_release_batch",
    "tollgate_key_spend",
    "tollgate_budget_alerts",
)


def definition(name: str) -> str:
    """The current `CREATE OR REPLACE FUNCTION` of one of SQL_FUNCTIONS, from `sql/NAME.sql`
    (shipped with the package; a test keeps it equal to what the migrations create)."""
    if name not in SQL_FUNCTIONS:
        raise ValueError(f"not a ledger function: {name}")
    return (resources.files("api.ledger") / "sql" / f"{name}.sql").read_text(encoding="utf-8")
