"""Budget periods. Until billing fills in subscription cycles, a period is the calendar month
in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def calendar_month(now: datetime) -> tuple[datetime, datetime]:
    now = now.astimezone(UTC)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return start, end
