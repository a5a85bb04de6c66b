"""Budget periods: the tenant's current subscription cycle when billing has one, else the
calendar month in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def calendar_month(now: datetime) -> tuple[datetime, datetime]:
    now = now.astimezone(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def budget_period(
    now: datetime, billing_period: tuple[datetime, datetime] | None
) -> tuple[datetime, datetime]:
    if billing_period is not None and billing_period[0] <= now < billing_period[1]:
        return billing_period
    return calendar_month(now)
