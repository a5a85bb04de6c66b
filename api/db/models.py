"""The schema, as typed SQLAlchemy models. Migrations are the source of truth for the database;
`alembic check` (run in the tests) proves these models and the migrations agree."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Money: USD with 10 decimal places (the smallest per-token rate, $0.08/M, is 8e-8 USD).
Money = Numeric(20, 10)

LEDGER_STATUSES = (
    "in_flight",
    "ok",
    "incomplete",
    "client_disconnected",
    "upstream_error",
    "timeout",
    "abandoned",
    "canceled",  # a batch request canceled before it ran
    "expired",  # a batch request that expired before it ran
)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Plan(Base):
    __tablename__ = "plans"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    monthly_budget_usd: Mapped[Decimal] = mapped_column(Money)
    rpm_limit: Mapped[int] = mapped_column(Integer)
    max_concurrent: Mapped[int] = mapped_column(Integer)
    quota_mode: Mapped[str] = mapped_column(String(8), server_default="hard")
    allowed_models: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    razorpay_plan_id: Mapped[str | None] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint("quota_mode IN ('hard', 'soft')", name="quota_mode"),
        CheckConstraint("monthly_budget_usd >= 0", name="budget_non_negative"),
        CheckConstraint("rpm_limit > 0 AND max_concurrent > 0", name="limits_positive"),
    )


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(Text, unique=True)  # uq_tenants_name
    plan_code: Mapped[str] = mapped_column(ForeignKey("plans.code"), index=True)
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    # Per-tenant overrides of the plan's limits; NULL means "use the plan's".
    monthly_budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    rpm_limit: Mapped[int | None] = mapped_column(Integer)
    max_concurrent: Mapped[int | None] = mapped_column(Integer)
    quota_mode: Mapped[str | None] = mapped_column(String(8))
    user_default_budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    # The current subscription cycle (billing fills these in); the budget period when set.
    billing_period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    billing_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended')", name="status"),
        CheckConstraint("quota_mode IS NULL OR quota_mode IN ('hard', 'soft')", name="quota_mode"),
    )


class EndUser(Base):
    __tablename__ = "end_users"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(256))
    monthly_budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    created_at: Mapped[datetime] = _now()

    __table_args__ = (UniqueConstraint("tenant_id", "external_id", name="uq_end_users_tenant"),)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    end_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("end_users.id", ondelete="SET NULL")
    )
    name: Mapped[str | None] = mapped_column(Text)
    # Only a SHA-256 of the key is stored, plus a display prefix such as "tg_live_Ab12…".
    key_hash: Mapped[bytes] = mapped_column(unique=True)
    prefix: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = _now()
    # A time in the future schedules the revocation (rotation): the key works until then.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Key policies (api/auth/tenant.py, tollgate_reserve); null: no limit of the kind.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    allowed_models: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    monthly_budget_usd: Mapped[Decimal | None] = mapped_column(Money)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # batched

    __table_args__ = (CheckConstraint("monthly_budget_usd >= 0", name="budget_non_negative"),)


class KeySpend(Base):
    """Spend and in-flight reservations of one key's ledger rows in one budget period, for keys
    with a budget; a deferred trigger on usage_ledger keeps it equal to those rows."""

    __tablename__ = "key_spend"

    api_key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    spent_usd: Mapped[Decimal] = mapped_column(Money, server_default="0")
    reserved_usd: Mapped[Decimal] = mapped_column(Money, server_default="0")


class UsageLedger(Base):
    """One row per request that reached the upstream; `id` is Tollgate's request id."""

    __tablename__ = "usage_ledger"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    end_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("end_users.id"))
    endpoint: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24))
    input_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    output_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cache_write_5m_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cache_write_1h_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, server_default="0")
    web_search_requests: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cost_usd: Mapped[Decimal] = mapped_column(Money, server_default="0")
    reserved_usd: Mapped[Decimal] = mapped_column(Money, server_default="0")
    price_version: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_token_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    upstream_request_id: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(Text)
    # Which server process holds the in-flight row (for the crash reaper).
    owner: Mapped[str | None] = mapped_column(Text)
    # The budget period whose counters this request's reservation and spend belong to.
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set for batch requests (endpoint 'batch'): one row per (batch, custom_id), ever.
    batch_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    custom_id: Mapped[str | None] = mapped_column(Text)
    # The modifiers the usage reported (a re-cost needs them): "fast"/"standard", "us"/…
    speed: Mapped[str | None] = mapped_column(Text)
    inference_geo: Mapped[str | None] = mapped_column(Text)
    # The escrow lease the request was admitted against (NULL: it reserved for itself).
    lease_id: Mapped[uuid.UUID | None] = mapped_column(UUID)

    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in LEDGER_STATUSES) + ")", name="status"
        ),
        Index("ix_usage_ledger_tenant_started", "tenant_id", "started_at"),
        Index("ix_usage_ledger_started", "started_at"),
        Index("ix_usage_ledger_user_started", "end_user_id", "started_at"),
        Index("ix_usage_ledger_key_started", "api_key_id", "started_at"),
        Index(
            "ix_usage_ledger_in_flight",
            "started_at",
            postgresql_where=text("status = 'in_flight'"),
        ),
        Index(
            "ix_usage_ledger_in_flight_owner",
            "owner",
            postgresql_where=text("status = 'in_flight'"),
        ),
        Index(
            "uq_usage_ledger_batch_request",
            "batch_id",
            "custom_id",
            unique=True,
            postgresql_where=text("batch_id IS NOT NULL"),
        ),
    )


class SpendCounter(Base):
    """Spend and reservations per (tenant, end user or none, budget period); the quota issue's
    atomic reserve/settle updates these rows."""

    __tablename__ = "spend_counters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    end_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("end_users.id", ondelete="CASCADE")
    )
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    spent_usd: Mapped[Decimal] = mapped_column(Money, server_default="0")
    reserved_usd: Mapped[Decimal] = mapped_column(Money, server_default="0")
    requests: Mapped[int] = mapped_column(BigInteger, server_default="0")
    in_flight: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (
        Index(
            "uq_spend_counters_scope",
            "tenant_id",
            "end_user_id",
            "period_start",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
        CheckConstraint("reserved_usd >= 0 AND in_flight >= 0", name="non_negative"),
    )


class BudgetLease(Base):
    """An escrow lease: budget (and, for a tenant lease, concurrency slots) that one server
    process holds and admits requests against in memory; counted into its counters'
    reserved_usd and in_flight (see api/ledger/leases.py)."""

    __tablename__ = "budget_leases"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(Text)
    end_user_id: Mapped[uuid.UUID | None] = mapped_column()
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    amount_usd: Mapped[Decimal] = mapped_column(Money, server_default="0")
    slots: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        Index("ix_budget_leases_owner", "owner"),
        CheckConstraint("amount_usd >= 0 AND slots >= 0", name="non_negative"),
    )


class RateWindow(Base):
    """Requests started per API key per minute, for the sliding-window rpm limit."""

    __tablename__ = "rate_windows"

    api_key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, server_default="0")


class ServerHeartbeat(Base):
    """Each server process says it is alive; the reaper releases what dead ones held."""

    __tablename__ = "server_heartbeats"

    owner: Mapped[str] = mapped_column(Text, primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class File(Base):
    """A file a tenant uploaded through Tollgate; `id` is the upstream's file id."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    filename: Mapped[str | None] = mapped_column(Text)
    mime_type: Mapped[str | None] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    downloadable: Mapped[bool | None] = mapped_column()
    created_at: Mapped[datetime] = _now()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_files_tenant_created", "tenant_id", "created_at"),)


BATCH_STATES = ("submitting", "submitted", "settled", "failed")


class Batch(Base):
    """A Message Batch a tenant created through Tollgate, with what it still has reserved and
    how far settlement got (`results_done` result lines processed)."""

    __tablename__ = "batches"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    upstream_id: Mapped[str | None] = mapped_column(Text, unique=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id"))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request_count: Mapped[int] = mapped_column(Integer)
    reserved_usd: Mapped[Decimal] = mapped_column(Money, server_default="0")
    results_done: Mapped[int] = mapped_column(Integer, server_default="0")
    owner: Mapped[str | None] = mapped_column(Text)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in BATCH_STATES) + ")", name="state"
        ),
        Index("ix_batches_tenant_created", "tenant_id", "created_at"),
        Index(
            "ix_batches_unsettled",
            "created_at",
            postgresql_where=text("state IN ('submitting', 'submitted')"),
        ),
    )


class BatchRequest(Base):
    """One request of a batch: its end user, model and the amount reserved for it."""

    __tablename__ = "batch_requests"

    batch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    custom_id: Mapped[str] = mapped_column(Text, primary_key=True)
    end_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("end_users.id"))
    model: Mapped[str] = mapped_column(Text)
    reserved_usd: Mapped[Decimal] = mapped_column(Money)


class ModelPriceRow(Base):
    """One price version of one model (never updated; a change is a new row). `id` is the
    version a ledger row's `price_version` names. The modifiers are validated JSON."""

    __tablename__ = "model_prices"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    model: Mapped[str] = mapped_column(Text)
    effective_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    aliases: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    display_name: Mapped[str | None] = mapped_column(Text)
    input: Mapped[Decimal] = mapped_column(Money)
    output: Mapped[Decimal] = mapped_column(Money)
    cache_write_5m: Mapped[Decimal] = mapped_column(Money)
    cache_write_1h: Mapped[Decimal] = mapped_column(Money)
    cache_read: Mapped[Decimal] = mapped_column(Money)
    modifiers: Mapped[dict[str, object]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = _now()

    __table_args__ = (UniqueConstraint("model", "effective_from", name="uq_model_prices_model"),)


class PriceRecost(Base):
    """One `tollgate prices recost`: which rows, and the totals before and after."""

    __tablename__ = "price_recosts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    model: Mapped[str] = mapped_column(Text)
    from_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    to_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rows: Mapped[int] = mapped_column(BigInteger)
    before_usd: Mapped[Decimal] = mapped_column(Money)
    after_usd: Mapped[Decimal] = mapped_column(Money)
    versions: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = _now()


class Subscription(Base):
    """Our copy of a Razorpay subscription. `version_at` is the time of the newest event (or
    fetch) applied: an older event never overwrites a newer state."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # sub_…
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    plan_code: Mapped[str] = mapped_column(ForeignKey("plans.code"))
    status: Mapped[str] = mapped_column(Text)
    paid_count: Mapped[int] = mapped_column(Integer, server_default="0")
    current_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    current_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    customer_id: Mapped[str | None] = mapped_column(Text)
    short_url: Mapped[str | None] = mapped_column(Text)
    version_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
