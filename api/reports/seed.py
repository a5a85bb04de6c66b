"""Synthetic usage for demos and benchmarks: tenants, end users, keys and final ledger rows,
generated inside Postgres (`generate_series`), so ten million rows take minutes, not hours.

The data looks like real traffic: a few big tenants and a long tail, skewed heavy end users who
mostly use one of their tenant's keys, a skewed model mix, mostly `ok` statuses, token counts
with long tails, costs from the price table, and a daily rhythm over the last `days` days.

Consistency is by construction, in the same transaction as the rows: the daily rollups and the
spend counters of the seeded tenants are rebuilt from the ledger with one `INSERT … SELECT …
GROUP BY` each. `bulk` also drops the indexes and foreign keys of the ledger and the rollups
during the load and builds them again after (much faster for millions of rows; it locks those
tables meanwhile: for benchmark databases, not live ones)."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from api.pricing.book import shipped_book
from api.reports import seed_sql as sql

# (model id, share of requests)
MODELS = (
    ("claude-sonnet-4-6", 0.40),
    ("claude-haiku-4-5", 0.26),
    ("claude-sonnet-4-5", 0.14),
    ("claude-opus-4-6", 0.10),
    ("claude-opus-4-5", 0.06),
    ("claude-sonnet-4-0", 0.04),
)
STATUSES = (
    ("ok", 0.955),
    ("incomplete", 0.01),
    ("client_disconnected", 0.015),
    ("upstream_error", 0.012),
    ("timeout", 0.005),
    ("abandoned", 0.003),
)
CHUNK_ROWS = 1_000_000
PEAK_HOUR = 15.0


@dataclass(frozen=True)
class SeedPlan:
    rows: int
    tenants: int = 50
    users: int = 2000
    days: int = 92
    end: datetime | None = None  # default: now
    bulk: bool = False


@dataclass(frozen=True)
class SeedResult:
    rows: int
    tenants: int
    users: int
    keys: int
    rollup_rows: int  # usage_daily
    user_rollup_rows: int  # usage_daily_users
    seconds: float


# Demo rows are priced from the shipped file's rates, not from a stored book version.
SEED_PRICE_VERSION = "seed"


def _cumulative(weights: list[float]) -> list[float]:
    """Inner bucket bounds for width_bucket(random(), bounds): index 0..len(weights)-1."""
    total, acc, bounds = sum(weights), 0.0, []
    for w in weights[:-1]:
        acc += w / total
        bounds.append(acc)
    return bounds


def _tenant_layout(plan: SeedPlan) -> list[tuple[int, float, int, int, int]]:
    """(index, traffic weight, first user index, user count, key count) per tenant: traffic
    falls off like a power law; end users grow with the square root of a tenant's traffic."""
    weights = [1 / (i + 1) ** 1.1 for i in range(plan.tenants)]
    user_shares = [math.sqrt(w) for w in weights]
    scale = sum(user_shares)
    layout, first = [], 0
    for i, w in enumerate(weights):
        users = max(3, round(plan.users * user_shares[i] / scale))
        layout.append((i, w, first, users, 2 + i % 3))
        first += users
    return layout


def _model_rows() -> list[tuple[object, ...]]:
    prices = shipped_book()
    rows: list[tuple[object, ...]] = []
    for i, (model, _) in enumerate(MODELS):
        price = prices.lookup(model)
        if price is None:
            raise ValueError(f"seed: {model} is not in the shipped price book")
        r = price.base
        rates = (r.input, r.output, r.cache_write_5m, r.cache_write_1h, r.cache_read)
        rows.append((i, model, *rates, price.web_search_per_1000))
    return rows


async def _exec(conn: AsyncConnection, statement: str, *args: object) -> None:
    await conn.exec_driver_sql(statement, args)


async def _setup(conn: AsyncConnection, plan: SeedPlan) -> list[uuid.UUID]:
    for statement in sql.TEMP_TABLES:
        await _exec(conn, statement)
    for ix, _, first, users, keys in _tenant_layout(plan):
        await _exec(conn, sql.SEED_TENANT, ix, f"seed-tenant-{ix + 1:02d}", first, users, keys)
    for statement in (*sql.SEED_USERS, *sql.SEED_KEYS):
        await _exec(conn, statement)
    for row in _model_rows():
        await _exec(conn, sql.SEED_MODEL, *row)
    await _exec(conn, sql.ANALYZE_TEMP)
    result = await conn.exec_driver_sql("SELECT id FROM seed_t ORDER BY ix")
    return [r[0] for r in result]


async def _load(
    conn: AsyncConnection, plan: SeedPlan, progress: Callable[[str], None], price_version: str
) -> None:
    end = plan.end or datetime.now(UTC)
    start = end - timedelta(days=plan.days)
    tenant_bounds = _cumulative([w for _, w, *_ in _tenant_layout(plan)])
    model_bounds = _cumulative([w for _, w in MODELS])
    status_bounds = _cumulative([w for _, w in STATUSES])
    statuses = [s for s, _ in STATUSES]
    # Busiest at PEAK_HOUR UTC: rows are spread evenly in a warped time whose clock runs
    # slowest (densest) there.
    start_hour = (start - start.replace(hour=0, minute=0, second=0, microsecond=0)) / timedelta(
        hours=1
    )
    phase = 2 * math.pi * (PEAK_HOUR - start_hour) / 24 - math.pi
    for first in range(0, plan.rows, CHUNK_ROWS):
        last = min(plan.rows, first + CHUNK_ROWS) - 1
        await _exec(
            conn,
            sql.LOAD_LEDGER,
            first,
            last,
            plan.rows,
            start.timestamp(),
            (end - start).total_seconds(),
            float(plan.days),
            tenant_bounds,
            model_bounds,
            status_bounds,
            statuses,
            price_version,
            phase,
        )
        progress(f"ledger rows: {last + 1:,} / {plan.rows:,}")


KEY_SPEND_TRIGGER = "usage_ledger_key_spend"


async def _drop_indexes(conn: AsyncConnection, table: str) -> list[str]:
    """Drop a table's foreign keys, indexes and (if nothing references it) primary key; return
    the statements that put them back."""
    result = await conn.exec_driver_sql(sql.TABLE_DDL, (table,))
    rows: list[Any] = list(result)
    restore = []
    for kind, name, definition in rows:
        if kind == "index":
            await _exec(conn, f'DROP INDEX "{name}"')
        else:
            await _exec(conn, f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        restore.append(definition)
    return list(reversed(restore))


async def seed(
    conn: AsyncConnection, plan: SeedPlan, progress: Callable[[str], None] = lambda _: None
) -> SeedResult:
    """Fill the database in the caller's transaction (commit it afterwards)."""
    began = time.monotonic()
    await _exec(conn, sql.SESSION_SETTINGS)
    tenant_ids = await _setup(conn, plan)
    restore = []
    for table in sql.BULK_TABLES if plan.bulk else ():
        restore += await _drop_indexes(conn, table)
    # The seeded keys are new and have no budget, so the key-spend trigger (deferred to commit)
    # has nothing to do for these rows; left on, its queued events would also forbid the
    # ALTER TABLEs that restore the indexes in this same transaction.
    await _exec(conn, f"ALTER TABLE usage_ledger DISABLE TRIGGER {KEY_SPEND_TRIGGER}")
    await _load(conn, plan, progress, SEED_PRICE_VERSION)
    await _exec(conn, f"ALTER TABLE usage_ledger ENABLE TRIGGER {KEY_SPEND_TRIGGER}")
    progress("rebuilding the rollups and the spend counters of the seeded tenants")
    for statement in sql.REBUILD:
        await _exec(conn, statement, tenant_ids)
    for statement in restore:
        progress(statement.split(" ON ")[0].split(" FOREIGN ")[0][:90])
        await _exec(conn, statement)
    counts = await conn.exec_driver_sql(sql.COUNTS, (tenant_ids,))
    row: Any = counts.one()
    users, keys, fine, by_user = (int(n) for n in row)
    seconds = round(time.monotonic() - began, 1)
    return SeedResult(plan.rows, len(tenant_ids), users, keys, fine, by_user, seconds)
