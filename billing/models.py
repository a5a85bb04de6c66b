"""Billing's own tables: the webhook inbox and overage charges. They share the app's metadata
(api.db.models.Base), so `alembic check` covers them. `Subscription` is in api.db.models: the
admin API shows it too, and features share tables only through the db package."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, Money, _now


class WebhookEvent(Base):
    """The inbox: every verified delivery stored once, keyed by X-Razorpay-Event-Id."""

    __tablename__ = "webhook_events"

    event_id: Mapped[str] = mapped_column(Text, primary_key=True)
    event: Mapped[str] = mapped_column(Text)
    subscription_id: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = _now()
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index(
            "ix_webhook_events_unprocessed",
            "received_at",
            postgresql_where=text("processed_at IS NULL"),
        ),
    )


class OverageCharge(Base):
    """One row per subscription cycle whose spend went past the plan's included amount. The
    row (the intent) is written before Razorpay is called; `addon_id` is set once the add-on
    exists, found either from our call or from Razorpay's add-on list after a crash."""

    __tablename__ = "overage_charges"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"))
    cycle_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cycle_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    spent_usd: Mapped[Decimal] = mapped_column(Money)
    included_usd: Mapped[Decimal] = mapped_column(Money)
    overage_usd: Mapped[Decimal] = mapped_column(Money)
    amount_paise: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(Text)  # intent | created | waived (under one rupee)
    addon_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        UniqueConstraint("subscription_id", "cycle_start", name="uq_overage_charges_cycle"),
    )
