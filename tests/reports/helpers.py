"""Shared by the report tests: ledger rows written the way the gateway writes them (an in-flight
row, then `tollgate_settle`), and the oracle every report is checked against: the ledger itself,
filtered and summed in Python."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.pricing.cost import format_usd
from api.tenants.users import ensure_end_user

COUNTERS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)

_OPEN = text(
    """
    INSERT INTO usage_ledger (id, tenant_id, api_key_id, end_user_id, endpoint, model, status,
                              started_at, owner, reserved_usd, period_start)
    VALUES (:id, :tenant_id, :key_id, :user_id, :endpoint, :model, 'in_flight', :started_at,
            'tests', 1, date_trunc('month', CAST(:started_at AS timestamptz), 'UTC'))
    """
)
_SETTLE = text(
    """
    SELECT tollgate_settle(:id, :status, :model, :input, :output, :cw5m, :cw1h, :cread, 0,
                           :cost, 'test', NULL, :ended_at, NULL, 200, NULL)
    """
)


def utc(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Usage:
    """What a settle reports."""

    model: str = "claude-haiku-4-5"
    input: int = 0
    output: int = 0
    cw5m: int = 0
    cw1h: int = 0
    cread: int = 0
    cost: Decimal = Decimal(0)
    status: str = "ok"


async def end_user(conn: AsyncConnection, tenant_id: uuid.UUID, external_id: str) -> uuid.UUID:
    if any(ord(ch) < 32 for ch in external_id):
        return await legacy_end_user(conn, tenant_id, external_id)
    return await ensure_end_user(conn, tenant_id, external_id)


async def legacy_end_user(
    conn: AsyncConnection, tenant_id: uuid.UUID, external_id: str
) -> uuid.UUID:
    """An end user whose id predates the input rules (control characters were accepted
    before): written straight to the table, as old data would be, so exports still have to
    escape it."""
    user_id = uuid.uuid4()
    await conn.execute(
        text("INSERT INTO end_users (id, tenant_id, external_id) VALUES (:id, :t, :e)"),
        {"id": user_id, "t": tenant_id, "e": external_id},
    )
    return user_id


async def open_request(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    key_id: uuid.UUID,
    user: str | None,
    started_at: datetime,
    model: str = "claude-haiku-4-5",
    endpoint: str = "messages",
) -> uuid.UUID:
    """An in-flight ledger row, as tollgate_reserve leaves it."""
    request_id = uuid.uuid4()
    user_id = await end_user(conn, tenant_id, user) if user is not None else None
    params = {
        "id": request_id,
        "tenant_id": tenant_id,
        "key_id": key_id,
        "user_id": user_id,
        "model": model,
        "started_at": started_at,
        "endpoint": endpoint,
    }
    await conn.execute(_OPEN, params)
    return request_id


async def settle(conn: AsyncConnection, request_id: uuid.UUID, usage: Usage) -> bool:
    params = {
        "id": request_id,
        "status": usage.status,
        "model": usage.model,
        "input": usage.input,
        "output": usage.output,
        "cw5m": usage.cw5m,
        "cw1h": usage.cw1h,
        "cread": usage.cread,
        "cost": usage.cost,
        "ended_at": datetime.now(UTC),
    }
    return bool((await conn.execute(_SETTLE, params)).scalar_one())


async def add_request(
    engine: AsyncEngine,
    tenant_id: uuid.UUID,
    key_id: uuid.UUID,
    user: str | None,
    started_at: datetime,
    usage: Usage,
    endpoint: str = "messages",
) -> uuid.UUID:
    """A request opened and settled, each in its own transaction (as the gateway does)."""
    async with engine.begin() as conn:
        request_id = await open_request(
            conn, tenant_id, key_id, user, started_at, usage.model, endpoint
        )
    async with engine.begin() as conn:
        assert await settle(conn, request_id, usage)
    return request_id


# -- the oracle ------------------------------------------------------------------------------


async def final_ledger(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every final ledger row with its end user's external id."""
    sql = """
        SELECT l.*, u.external_id FROM usage_ledger l
        LEFT JOIN end_users u ON u.id = l.end_user_id
        WHERE l.status <> 'in_flight'
    """
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(text(sql))).mappings()]


def _key(row: dict[str, Any], group_by: str) -> tuple[Any, ...]:
    if group_by == "tenant":
        return (str(row["tenant_id"]),)
    if group_by == "user":
        return (row["external_id"], str(row["tenant_id"]))
    if group_by == "model":
        return (row["model"],)
    if group_by == "key":
        return (str(row["api_key_id"]),)
    return (row["started_at"].astimezone(UTC).date().isoformat(),)


def _matches(row: dict[str, Any], params: dict[str, str]) -> bool:
    checks = {
        "tenant_id": lambda v: str(row["tenant_id"]) == v,
        "key_id": lambda v: str(row["api_key_id"]) == v,
        "model": lambda v: row["model"] == v,
        "user": lambda v: row["external_id"] == v,
        "from": lambda v: (
            row["started_at"] >= datetime.fromisoformat(v).astimezone(UTC)
            if "T" in v
            else row["started_at"] >= utc(v + "T00:00:00")
        ),
        "to": lambda v: (
            row["started_at"] < datetime.fromisoformat(v).astimezone(UTC)
            if "T" in v
            else row["started_at"] < utc(v + "T00:00:00")
        ),
    }
    return all(checks[name](value) for name, value in params.items() if name in checks)


def _add(acc: dict[str, Any], row: dict[str, Any]) -> None:
    acc["requests"] += 1
    acc["input_tokens"] += row["input_tokens"]
    acc["output_tokens"] += row["output_tokens"]
    acc["cache_creation_input_tokens"] += row["cache_write_5m_tokens"]
    acc["cache_creation_input_tokens"] += row["cache_write_1h_tokens"]
    acc["cache_read_input_tokens"] += row["cache_read_tokens"]
    acc["cost_usd"] += row["cost_usd"]


def _zero() -> dict[str, Any]:
    return dict.fromkeys(COUNTERS, 0) | {"cost_usd": Decimal(0)}


def _render(acc: dict[str, Any]) -> dict[str, Any]:
    return {**acc, "cost_usd": format_usd(acc["cost_usd"])}


GROUP_FIELDS = {
    "tenant": ("tenant",),
    "user": ("user", "tenant"),
    "model": ("model",),
    "key": ("key",),
    "day": ("day",),
}


def expected_report(rows: Iterable[dict[str, Any]], params: dict[str, str]) -> dict[str, Any]:
    """What `/admin/usage` must answer for `params` (rows in no particular order)."""
    group_by = params.get("group_by")
    groups: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(_zero)
    total = _zero()
    for row in rows:
        if not _matches(row, params):
            continue
        _add(total, row)
        if group_by is not None:
            _add(groups[_key(row, group_by)], row)
    out_rows = []
    if group_by is not None:
        for key, acc in groups.items():
            out_rows.append(dict(zip(GROUP_FIELDS[group_by], key, strict=True)) | _render(acc))
    return {"rows": out_rows, "total": _render(total)}


def unordered(report: dict[str, Any]) -> dict[str, Any]:
    """A report with its rows sorted, to compare with the oracle."""
    return {**report, "rows": sorted(report["rows"], key=repr)}
