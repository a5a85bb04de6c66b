"""Ledger writes: the in-flight row opened before the upstream call, and the settle that makes
it final. Settling is idempotent (it only touches a row still `in_flight`), which is what lets a
spooled record be replayed any number of times and still count once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_OPEN = text(
    """
    INSERT INTO usage_ledger (id, tenant_id, api_key_id, end_user_id, endpoint, model, status,
                              started_at, owner)
    VALUES (:id, :tenant_id, :api_key_id, :end_user_id, :endpoint, :model, 'in_flight',
            :started_at, :owner)
    """
)

_SETTLE = text(
    """
    UPDATE usage_ledger
    SET status = :status, model = :model,
        input_tokens = :input_tokens, output_tokens = :output_tokens,
        cache_write_5m_tokens = :cache_write_5m_tokens,
        cache_write_1h_tokens = :cache_write_1h_tokens,
        cache_read_tokens = :cache_read_tokens, web_search_requests = :web_search_requests,
        cost_usd = :cost_usd, price_version = :price_version,
        first_token_at = :first_token_at, ended_at = :ended_at,
        upstream_request_id = :upstream_request_id, http_status = :http_status,
        error_type = :error_type
    WHERE id = :id AND status = 'in_flight'
    RETURNING id
    """
)


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
        values = dict(raw)
        values["id"] = uuid.UUID(values["id"])
        values["cost_usd"] = Decimal(values["cost_usd"])
        for name in ("first_token_at", "ended_at"):
            if values[name] is not None:
                values[name] = datetime.fromisoformat(values[name])
        return cls(**values)


async def open_request(conn: AsyncConnection, row: OpenRequest) -> None:
    await conn.execute(_OPEN, _shallow(row))


async def settle(conn: AsyncConnection, settlement: Settlement) -> bool:
    """Make the row final. True if this call settled it, False if it already was."""
    result = await conn.execute(_SETTLE, settlement.params())
    return result.first() is not None


def _shallow(obj: OpenRequest | Settlement) -> dict[str, Any]:
    """Field values as a dict, without `asdict`'s deep copy (this runs twice per request)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
