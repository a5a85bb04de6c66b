"""Parsing report query parameters. Every failure is a 400 `invalid_request_error` whose message
starts with the parameter's name (`from: not an ISO date or datetime`)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, date, datetime, time
from typing import TypeVar

from starlette.datastructures import QueryParams

from api.errors import InvalidRequest
from api.inputs import INSTANT_PATTERN, check_text, text_schema
from api.reports.query import Filters, Format, GroupBy, ReportQuery, Window

ADMIN_PARAMS = frozenset(
    {"tenant_id", "user", "model", "key_id", "endpoint", "from", "to", "group_by", "format"}
)
TENANT_PARAMS = ADMIN_PARAMS - {"tenant_id"}

_MAX_TEXT = 256
_MAX_ENDPOINT = 32  # usage_ledger.endpoint's width


def _one(params: QueryParams, name: str) -> str | None:
    values = params.getlist(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"{name}: given more than once")
    return values[0]


def _text(params: QueryParams, name: str, most: int = _MAX_TEXT) -> str | None:
    value = _one(params, name)
    return None if value is None else check_text(value, name, most)


def _uuid(params: QueryParams, name: str) -> uuid.UUID | None:
    value = _one(params, name)
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidRequest(f"{name}: not an id: {value[:64]!r}") from None


def parse_instant(name: str, value: str) -> datetime:
    """An ISO 8601 date (midnight UTC) or datetime (UTC unless it carries an offset)."""
    try:
        if len(value) <= 10:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"{name}: not an ISO 8601 date or datetime (e.g. 2026-11-01 or "
            f"2026-11-01T12:00:00Z): {value[:64]!r}"
        ) from None


def _instant(params: QueryParams, name: str) -> datetime | None:
    value = _one(params, name)
    return None if value is None else parse_instant(name, value)


E = TypeVar("E", GroupBy, Format)


def _choice(params: QueryParams, name: str, kind: type[E], default: E | None) -> E | None:
    value = _one(params, name)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidRequest(f"{name}: must be one of {allowed}; got {value[:64]!r}") from None


_PARAMETER_DOCS: dict[str, tuple[str, dict[str, object]]] = {
    "tenant_id": ("only this tenant", {"type": "string", "format": "uuid"}),
    "user": ("only this end user (external id)", text_schema(_MAX_TEXT)),
    "model": ("only this model id", text_schema(_MAX_TEXT)),
    "key_id": ("only this API key", {"type": "string", "format": "uuid"}),
    "endpoint": (
        "only this endpoint: messages, chat, chat_completions, batch",
        text_schema(_MAX_ENDPOINT),
    ),
    "from": (
        "ISO 8601 date or datetime, UTC, inclusive",
        {"type": "string", "pattern": INSTANT_PATTERN},
    ),
    "to": (
        "ISO 8601 date or datetime, UTC, exclusive; later than from",
        {"type": "string", "pattern": INSTANT_PATTERN},
    ),
    "group_by": ("how rows are grouped", {"enum": [g.value for g in GroupBy]}),
    "format": ("json (default) or csv", {"enum": [f.value for f in Format]}),
}


def report_parameters(names: Collection[str]) -> list[dict[str, object]]:
    """The OpenAPI query parameters of a report route that accepts `names`."""
    return [
        {"name": name, "in": "query", "required": False, "description": doc, "schema": schema}
        for name, (doc, schema) in _PARAMETER_DOCS.items()
        if name in names
    ]


def parse_report(
    params: QueryParams, allowed: Collection[str] = ADMIN_PARAMS, *, strict: bool = True
) -> ReportQuery:
    """The report `params` ask for. A known name outside `allowed` is refused; so is an
    unknown one when `strict` (a typo such as `tenant=` must not silently report on every
    tenant)."""
    for name in params:
        if name in allowed:
            continue
        if name in ADMIN_PARAMS:
            raise InvalidRequest(f"{name}: not accepted here")
        if strict:
            known = ", ".join(sorted(allowed))
            raise InvalidRequest(f"{name[:64]}: unknown parameter (known: {known})")
    filters = Filters(
        tenant_id=_uuid(params, "tenant_id"),
        user=_text(params, "user"),
        model=_text(params, "model"),
        key_id=_uuid(params, "key_id"),
        endpoint=_text(params, "endpoint", _MAX_ENDPOINT),
    )
    window = Window(_instant(params, "from"), _instant(params, "to"))
    if window.start is not None and window.end is not None and window.start >= window.end:
        raise InvalidRequest("to: must be later than from")
    return ReportQuery(
        filters=filters,
        window=window,
        group_by=_choice(params, "group_by", GroupBy, None),
        format=_choice(params, "format", Format, Format.json) or Format.json,
    )
