"""The daily usage rollups. `tollgate_settle` maintains both in the same transaction as the
ledger row it settles (see migrations/versions/2026-11-20-2330_usage_rollups.py), so they always
equal the ledger's final rows summed per scope; reports read them for whole UTC days. They share
the app's metadata, so `alembic check` covers them.

* `usage_daily`: per (tenant, day, key, end user, model, endpoint): for reports by model, key or
  endpoint (migrations/versions/2026-11-30-1800_rollup_endpoint.py added the endpoint);
* `usage_daily_users`: per (tenant, day, end user): for reports by tenant, end user or day."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import BigInteger, Date, Identity, Index, String, Text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from api.db.models import Base, Money


def _counter() -> Mapped[int]:
    return mapped_column(BigInteger, server_default="0")


class _Rollup:
    """The columns every rollup has: an identity key, the scope, the counters."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID)
    day: Mapped[date] = mapped_column(Date)  # the UTC date of the requests' started_at
    end_user_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    requests: Mapped[int] = _counter()
    input_tokens: Mapped[int] = _counter()
    output_tokens: Mapped[int] = _counter()
    cache_write_5m_tokens: Mapped[int] = _counter()
    cache_write_1h_tokens: Mapped[int] = _counter()
    cache_read_tokens: Mapped[int] = _counter()
    web_search_requests: Mapped[int] = _counter()
    cost_usd: Mapped[Decimal] = mapped_column(Money, server_default="0")


def _indexes(name: str, scope: tuple[str, ...]) -> tuple[Index, ...]:
    return (
        Index(f"uq_{name}_scope", *scope, unique=True, postgresql_nulls_not_distinct=True),
        Index(f"ix_{name}_day", "day"),
        Index(f"ix_{name}_user_day", "end_user_id", "day"),
    )


class UsageDaily(_Rollup, Base):
    __tablename__ = "usage_daily"

    api_key_id: Mapped[uuid.UUID] = mapped_column(UUID)
    model: Mapped[str] = mapped_column(Text)
    endpoint: Mapped[str] = mapped_column(String(32))  # messages | chat | chat_completions | batch

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        scope = ("tenant_id", "day", "api_key_id", "end_user_id", "model", "endpoint")
        return (
            *_indexes("usage_daily", scope),
            Index("ix_usage_daily_key_day", "api_key_id", "day"),
        )


class UsageDailyUsers(_Rollup, Base):
    __tablename__ = "usage_daily_users"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        return _indexes("usage_daily_users", ("tenant_id", "day", "end_user_id"))
