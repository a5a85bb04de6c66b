"""The budget alerts' tables (they share the metadata of api/db/models.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ARRAY, DateTime, ForeignKey, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import Base, Money


class AlertSettings(Base):
    """Where a tenant's budget alerts go, signed with `secret`, at which percentages."""

    __tablename__ = "alert_settings"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    url: Mapped[str] = mapped_column(Text)
    thresholds: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    secret: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AlertEvent(Base):
    """One threshold crossed (once per threshold, period and subject) and its delivery."""

    __tablename__ = "alert_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    end_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("end_users.id", ondelete="CASCADE")
    )
    threshold_pct: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    limit_usd: Mapped[Decimal] = mapped_column(Money)
    spent_usd: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    __table_args__ = (
        Index(
            "uq_alert_events_once",
            "tenant_id",
            "end_user_id",
            "period_start",
            "threshold_pct",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
        Index(
            "ix_alert_events_pending",
            "next_attempt_at",
            postgresql_where=text("delivered_at IS NULL"),
        ),
    )
