"""What a usage report asks for: filters, a time window and a grouping, already validated.

A window is split into the whole UTC days the daily rollup answers and the partial days at its
edges, which only the ledger can answer exactly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum


class GroupBy(StrEnum):
    tenant = "tenant"
    user = "user"
    model = "model"
    key = "key"
    day = "day"
    endpoint = "endpoint"


class Format(StrEnum):
    json = "json"
    csv = "csv"


@dataclass(frozen=True)
class Filters:
    tenant_id: uuid.UUID | None = None
    user: str | None = None  # the end user's external id
    model: str | None = None
    key_id: uuid.UUID | None = None
    endpoint: str | None = None  # messages | chat | chat_completions | batch


@dataclass(frozen=True)
class Window:
    """`start` inclusive, `end` exclusive, both aware UTC datetimes; None is unbounded."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class ReportQuery:
    filters: Filters = field(default_factory=Filters)
    window: Window = field(default_factory=Window)
    group_by: GroupBy | None = None
    format: Format = Format.json

    def for_tenant(self, tenant_id: uuid.UUID) -> ReportQuery:
        """The same report, confined to one tenant."""
        return replace(self, filters=replace(self.filters, tenant_id=tenant_id))


@dataclass(frozen=True)
class DayRange:
    """Whole UTC days [first, stop) for the rollup; None is unbounded."""

    first: date | None
    stop: date | None


@dataclass(frozen=True)
class Plan:
    """Which source answers which part of a window: the rollup for whole days (or nothing),
    the ledger for the partial-day edges (0, 1 or 2 ranges)."""

    days: DayRange | None
    edges: tuple[Window, ...]


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def _ceil_day(ts: datetime) -> date:
    d = ts.astimezone(UTC).date()
    return d if _midnight(d) == ts else d + timedelta(days=1)


def split_window(window: Window) -> Plan:
    """Split a window into whole days (rollup) and partial-day edges (ledger)."""
    start, end = window.start, window.end
    first = _ceil_day(start) if start is not None else None
    stop = end.astimezone(UTC).date() if end is not None else None
    if first is not None and stop is not None and first >= stop:
        return Plan(None, (window,))  # no whole day inside: the ledger answers all of it
    edges: list[Window] = []
    if start is not None and first is not None and _midnight(first) > start:
        edges.append(Window(start, _midnight(first)))
    if end is not None and stop is not None and _midnight(stop) < end:
        edges.append(Window(_midnight(stop), end))
    return Plan(DayRange(first, stop), tuple(edges))
