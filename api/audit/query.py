"""Reading the audit log back: filters `from` (inclusive), `to` (exclusive), `action`, `actor`,
`target_id`; newest first, `limit` entries (default 100, at most 1000) older than `before_id`
when given (the last id of the previous page)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.audit.models import AuditEntry
from api.errors import InvalidRequest
from api.inputs import INSTANT_PATTERN, check_text, text_schema

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PARAMETERS = ("from", "to", "action", "actor", "target_id", "limit", "before_id")
MAX_TEXT = 256
_EMPTY = {"const": ""}  # an empty value filters nothing
PARAMETER_SCHEMAS: dict[str, dict[str, object]] = {
    "from": {"anyOf": [{"type": "string", "pattern": INSTANT_PATTERN}, _EMPTY]},
    "to": {"anyOf": [{"type": "string", "pattern": INSTANT_PATTERN}, _EMPTY]},
    "action": {"anyOf": [text_schema(MAX_TEXT), _EMPTY]},
    "actor": {"anyOf": [text_schema(MAX_TEXT), _EMPTY]},
    "target_id": {"anyOf": [text_schema(MAX_TEXT), _EMPTY]},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
    "before_id": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, _EMPTY]},
}


@dataclass(frozen=True)
class AuditFilter:
    start: datetime | None = None
    end: datetime | None = None
    action: str | None = None
    actor: str | None = None
    target_id: str | None = None
    limit: int = DEFAULT_LIMIT
    before_id: int | None = None


def _instant(name: str, value: str) -> datetime:
    try:
        if len(value) <= 10:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"{name}: not an ISO 8601 date or datetime: {value[:64]!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _count(name: str, value: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidRequest(f"{name}: expected an integer from {low} to {high}")
    return int(value)


def _text(name: str, value: str | None) -> str | None:
    return check_text(value, name, MAX_TEXT) if value else None  # empty: no filter


def parse_filter(params: dict[str, str]) -> AuditFilter:
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise InvalidRequest(f"{unknown[0]}: unknown parameter (known: {', '.join(PARAMETERS)})")
    get = params.get
    return AuditFilter(
        start=_instant("from", v) if (v := get("from")) else None,
        end=_instant("to", v) if (v := get("to")) else None,
        action=_text("action", get("action")),
        actor=_text("actor", get("actor")),
        target_id=_text("target_id", get("target_id")),
        limit=_count("limit", get("limit", str(DEFAULT_LIMIT)), 1, MAX_LIMIT),
        before_id=_count("before_id", v, 1, 2**63 - 1) if (v := get("before_id")) else None,
    )


async def entries(conn: AsyncConnection, f: AuditFilter) -> list[dict[str, Any]]:
    stmt = select(AuditEntry.__table__).order_by(AuditEntry.id.desc()).limit(f.limit)
    if f.start is not None:
        stmt = stmt.where(AuditEntry.at >= f.start)
    if f.end is not None:
        stmt = stmt.where(AuditEntry.at < f.end)
    if f.before_id is not None:
        stmt = stmt.where(AuditEntry.id < f.before_id)
    for column, value in (
        (AuditEntry.action, f.action),
        (AuditEntry.actor, f.actor),
        (AuditEntry.target_id, f.target_id),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    rows = (await conn.execute(stmt)).mappings()
    return [
        {
            "id": row["id"],
            "at": row["at"].astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "actor": row["actor"],
            "action": row["action"],
            "target_type": row["target_type"],
            "target_id": row["target_id"],
            "before": row["before"],
            "after": row["after"],
            "request_id": row["request_id"],
        }
        for row in rows
    ]
