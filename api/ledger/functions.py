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


_OWN_IN_FLIGHT = text(
    "SELECT id FROM usage_ledger WHERE status = 'in_flight' AND owner = :owner "
    "AND endpoint <> 'batch'"
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

    outcome: str  # ok | budget | user_budget | rate | concurrency
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
        values = dict(raw)  # records spooled before speed/inference_geo existed lack them
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


async def own_in_flight(conn: AsyncConnection, owner: str) -> list[uuid.UUID]:
    """The ids of `owner`'s in-flight rows (batch rows, settled by the batch settler, aside)."""
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
    "tollgate_lease_acquire",
    "tollgate_lease_return",
    "tollgate_reap_leases",
    "tollgate_reserve_batch",
    "tollgate_settle_batch_result",
    "tollgate_release_batch",
)


def definition(name: str) -> str:
    """The current `CREATE OR REPLACE FUNCTION` of one of SQL_FUNCTIONS, from `sql/NAME.sql`
    (shipped with the package; a test keeps it equal to what the migrations create)."""
    if name not in SQL_FUNCTIONS:
        raise ValueError(f"not a ledger function: {name}")
    return (resources.files("api.ledger") / "sql" / f"{name}.sql").read_text(encoding="utf-8")
