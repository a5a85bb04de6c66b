"""Re-costing (`tollgate prices recost`, `POST /admin/prices/{model}/recost`): re-price the
settled ledger rows of one model that started in [from, to) with the version in force when each
started, after a price was corrected (a new version with an earlier `effective_from`).

One transaction does it all, or nothing:

1. an advisory lock serialises re-costs; the rows are locked (`FOR UPDATE`, in id order);
2. each row is priced from its stored tokens, web searches, `speed` and `inference_geo` (batch
   rows at the batch discount) with the book as stored in this transaction;
3. the rows whose cost or version changed get the new `cost_usd` and `price_version`;
4. the differences go to `spend_counters` (the tenant row, then the end-user row, of each row's
   period, in key order: the lock order of reserve and settle) and to the daily rollups
   (`usage_daily`, then `usage_daily_users`), so counters, rollups and the ledger stay equal;
5. a `price_recosts` row records the model, the window, the rows, the totals before and after
   and the versions used.

Rows re-costed: every status but `in_flight` (not final yet) and `abandoned` (no usage), and
not the batch requests that did not succeed (they cost 0 by rule). Matching is by the model's
id and its aliases. Running it again changes nothing (the costs are already those of the book);
it records another run with equal totals. Batch rows keep no `speed`/`inference_geo`, so they
are re-priced at the standard speed and the global geo.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api import audit
from api.audit import Actor
from api.errors import InvalidRequest, NotFound, TollgateError
from api.money import format_usd
from api.pricing import repository
from api.pricing.book import PriceBook
from api.pricing.cost import Usage, compute_cost

_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('tollgate.price_recost'))")
_ROWS = text(
    """
    SELECT id, tenant_id, end_user_id, api_key_id, period_start, started_at, model, endpoint,
           input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens,
           cache_read_tokens, web_search_requests, speed, inference_geo, cost_usd,
           price_version
      FROM usage_ledger
     WHERE model = ANY(:models) AND started_at >= :from_at AND started_at < :to_at
       AND status NOT IN ('in_flight', 'abandoned')
       AND NOT (endpoint = 'batch' AND status <> 'ok')
     ORDER BY id
       FOR UPDATE
    """
)
_UPDATE_ROWS = text(
    """
    UPDATE usage_ledger l SET cost_usd = v.cost, price_version = v.version
      FROM unnest(CAST(:ids AS uuid[]), CAST(:costs AS numeric[]), CAST(:versions AS text[]))
           AS v(id, cost, version)
     WHERE l.id = v.id
    """
)
_TENANT_COUNTER = text(
    "UPDATE spend_counters SET spent_usd = spent_usd + :delta "
    "WHERE tenant_id = CAST(:tenant AS uuid) AND end_user_id IS NULL AND period_start = :period"
)
_USER_COUNTER = text(
    "UPDATE spend_counters SET spent_usd = spent_usd + :delta "
    "WHERE tenant_id = CAST(:tenant AS uuid) AND end_user_id = CAST(:user AS uuid) "
    "AND period_start = :period"
)
_DAILY = text(
    "UPDATE usage_daily SET cost_usd = cost_usd + :delta "
    "WHERE tenant_id = CAST(:tenant AS uuid) AND day = :day AND model = :model "
    "AND endpoint = :endpoint AND api_key_id = CAST(:key AS uuid) "
    "AND end_user_id IS NOT DISTINCT FROM CAST(:user AS uuid)"
)
_DAILY_USERS = text(
    "UPDATE usage_daily_users SET cost_usd = cost_usd + :delta "
    "WHERE tenant_id = CAST(:tenant AS uuid) AND day = :day "
    "AND end_user_id IS NOT DISTINCT FROM CAST(:user AS uuid)"
)
_RECORD = text(
    """
    INSERT INTO price_recosts (model, from_at, to_at, rows, before_usd, after_usd, versions)
    VALUES (:model, :from_at, :to_at, :rows, :before, :after, :versions)
    RETURNING id, created_at
    """
)


class RecostDrift(TollgateError):
    """A counter or rollup row a re-costed row should have is missing."""


class EmptyWindow(InvalidRequest):
    """`from` is not before `to`."""


class UnknownModel(NotFound):
    """The book has no such model: nothing to re-cost it with."""


class NoPriceInForce(NotFound):
    """A row started before the model's first version."""


@dataclass(frozen=True)
class RecostReport:
    id: int
    model: str
    from_at: datetime
    to_at: datetime
    rows: int  # rows re-priced (considered)
    changed: int  # rows whose cost or version changed
    before_usd: Decimal
    after_usd: Decimal
    versions: list[str]
    created_at: datetime


@dataclass(frozen=True)
class _Change:
    row: Mapping[str, Any]
    delta: Decimal


async def recost(
    engine: AsyncEngine, model: str, from_at: datetime, to_at: datetime, actor: Actor
) -> RecostReport:
    """Re-price `model`'s settled rows that started in [from_at, to_at); see the module doc.
    Recorded in the audit log (by `actor`) in the same transaction."""
    if not from_at < to_at:
        raise EmptyWindow("recost: from must be before to")
    async with engine.begin() as conn:
        await conn.execute(_LOCK)
        book = PriceBook(await repository.load_all(conn))
        canonical = book.canonical(model)
        if canonical is None:
            raise UnknownModel(f"{model} is not in the price book")
        ids = [canonical, *_aliases(book, canonical)]
        params = {"models": ids, "from_at": from_at, "to_at": to_at}
        rows = [dict(r) for r in (await conn.execute(_ROWS, params)).mappings()]
        before = sum((r["cost_usd"] for r in rows), Decimal(0))
        changes, versions = _reprice(book, rows)
        await _apply(conn, changes, versions)
        after = before + sum((c.delta for c in changes), Decimal(0))
        used = sorted(set(versions.values()), key=int)
        totals = {"rows": len(rows), "before": before, "after": after, "versions": used}
        record = (
            await conn.execute(
                _RECORD, {"model": canonical, "from_at": from_at, "to_at": to_at, **totals}
            )
        ).one()
        report = RecostReport(
            int(record.id), canonical, from_at, to_at, len(rows), len(changes), before, after,
            used, record.created_at,
        )  # fmt: skip
        await audit.record(
            conn, actor, "price.recost", "price", canonical, None, report_to_json(report)
        )
    return report


def parse_instant(name: str, value: str) -> datetime:
    """An ISO 8601 date (midnight UTC) or datetime (UTC unless it carries an offset)."""
    try:
        if len(value) <= 10:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"{name}: not an ISO 8601 date or datetime (e.g. 2026-11-01 or "
            f"2026-11-01T12:00:00Z): {value[:64]!r}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def report_to_json(report: RecostReport) -> dict[str, object]:
    return {
        "id": report.id,
        "model": report.model,
        "from": report.from_at.isoformat(),
        "to": report.to_at.isoformat(),
        "rows": report.rows,
        "changed": report.changed,
        "before_usd": format_usd(report.before_usd),
        "after_usd": format_usd(report.after_usd),
        "versions": report.versions,
        "created_at": report.created_at.isoformat(),
    }


def _aliases(book: PriceBook, canonical: str) -> list[str]:
    return sorted({a for p in book.versions() if p.model == canonical for a in p.aliases})


def _reprice(
    book: PriceBook, rows: Sequence[Mapping[str, Any]]
) -> tuple[list[_Change], dict[uuid.UUID, str]]:
    """The rows whose cost or version changes, with the cost difference; every row's version."""
    changes: list[_Change] = []
    versions: dict[uuid.UUID, str] = {}
    for row in rows:
        price = book.lookup(row["model"], row["started_at"])
        if price is None:
            raise NoPriceInForce(
                f"{row['model']} has no price version in force at {row['started_at'].isoformat()}"
            )
        usage = Usage(
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cache_write_5m_tokens=row["cache_write_5m_tokens"],
            cache_write_1h_tokens=row["cache_write_1h_tokens"],
            cache_read_tokens=row["cache_read_tokens"],
            web_search_requests=row["web_search_requests"],
            inference_geo=row["inference_geo"],
            speed=row["speed"],
        )
        cost = compute_cost(price, usage, batch=row["endpoint"] == "batch")
        versions[row["id"]] = price.version
        if cost != row["cost_usd"] or price.version != row["price_version"]:
            changes.append(_Change(row, cost - row["cost_usd"]))
    return changes, versions


async def _apply(
    conn: AsyncConnection, changes: list[_Change], versions: dict[uuid.UUID, str]
) -> None:
    if not changes:
        return
    await conn.execute(
        _UPDATE_ROWS,
        {
            "ids": [c.row["id"] for c in changes],
            "costs": [c.row["cost_usd"] + c.delta for c in changes],
            "versions": [versions[c.row["id"]] for c in changes],
        },
    )
    tenants: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    users: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    daily: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    daily_users: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
    for change in changes:
        r, delta = change.row, change.delta
        day: date = r["started_at"].astimezone(UTC).date()
        if r["period_start"] is not None:
            tenants[(str(r["tenant_id"]), r["period_start"])] += delta
            if r["end_user_id"] is not None:
                users[(str(r["tenant_id"]), str(r["end_user_id"]), r["period_start"])] += delta
        user = str(r["end_user_id"]) if r["end_user_id"] is not None else None
        scope = (str(r["api_key_id"]), user or "", r["model"], r["endpoint"])
        daily[(str(r["tenant_id"]), day, *scope)] += delta
        daily_users[(str(r["tenant_id"]), day, user or "")] += delta
    # Key order everywhere: tenant counters, user counters, then the rollups (as settle does).
    for (tenant, period), delta in sorted(tenants.items()):
        await _one(conn, _TENANT_COUNTER, tenant=tenant, period=period, delta=delta)
    for (tenant, user_id, period), delta in sorted(users.items()):
        await _one(conn, _USER_COUNTER, tenant=tenant, user=user_id, period=period, delta=delta)
    for (tenant, day, key, user_key, model, endpoint), delta in sorted(daily.items()):
        await _one(
            conn, _DAILY, tenant=tenant, day=day, key=key, model=model, endpoint=endpoint,
            user=user_key or None, delta=delta,
        )  # fmt: skip
    for (tenant, day, user_key), delta in sorted(daily_users.items()):
        await _one(conn, _DAILY_USERS, tenant=tenant, day=day, user=user_key or None, delta=delta)


async def _one(conn: AsyncConnection, statement: TextClause, **params: object) -> None:
    """Run an UPDATE that must find its row: a missing counter or rollup row would leave them
    unequal to the ledger, so the whole re-cost is rolled back instead."""
    result = await conn.execute(statement, params)
    if result.rowcount != 1:
        raise RecostDrift(
            f"re-cost refused: expected one row for {statement.text.split()[1]} {params}, "
            f"found {result.rowcount}; nothing was changed"
        )
