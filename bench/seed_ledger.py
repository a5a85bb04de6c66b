"""Fill a Tollgate database with realistic usage, fast (the rows are generated inside Postgres).

    .venv/bin/python bench/seed_ledger.py --rows 10000000 \
        --database-url postgresql://postgres@127.0.0.1:5432/tollgate_reports_bench

Migrates the database first. ~50 tenants (power-law traffic), ~2,000 end users, 2-4 keys per
tenant, six models, ~95% `ok`, timestamps over the last 92 days; the daily rollup and the spend
counters of the seeded tenants are rebuilt from the ledger in the same transaction. With
`--rows` of 500,000 or more the ledger's indexes are dropped during the load and rebuilt after
(the ledger is locked meanwhile: for benchmark databases, not live ones). Everything is one
transaction: an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from api.db.engine import to_asyncpg_url
from api.db.migrate import upgrade
from api.reports.seed import SeedPlan, SeedResult, seed

BULK_FROM_ROWS = 500_000


def _progress(began: float) -> Callable[[str], None]:
    def report(message: str) -> None:
        print(f"[{time.monotonic() - began:7.1f}s] {message}", flush=True)

    return report


async def run(url: str, plan: SeedPlan, vacuum: bool) -> SeedResult:
    began = time.monotonic()
    report = _progress(began)
    engine = create_async_engine(url, connect_args={"command_timeout": None})
    try:
        async with engine.begin() as conn:
            result = await seed(conn, plan, report)
            report("committing")
        if vacuum:
            report("VACUUM ANALYZE (hint bits and the visibility map, as autovacuum would set)")
            autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
            async with autocommit.connect() as conn:
                await conn.execute(text("VACUUM (ANALYZE) usage_ledger"))
                await conn.execute(text("VACUUM (ANALYZE) usage_daily"))
                await conn.execute(text("VACUUM (ANALYZE) usage_daily_users"))
                await conn.execute(text("ANALYZE end_users, api_keys, tenants, spend_counters"))
    finally:
        await engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, required=True, help="ledger rows to add")
    parser.add_argument("--database-url", required=True, help="postgresql:// URL")
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--users", type=int, default=2000, help="end users across all tenants")
    parser.add_argument("--days", type=int, default=92, help="spread over the last N days")
    parser.add_argument("--no-vacuum", action="store_true", help="skip VACUUM ANALYZE after")
    args = parser.parse_args()
    url = to_asyncpg_url(args.database_url)
    began = time.monotonic()
    upgrade(url)
    plan = SeedPlan(
        rows=args.rows,
        tenants=args.tenants,
        users=args.users,
        days=args.days,
        bulk=args.rows >= BULK_FROM_ROWS,
    )
    result = asyncio.run(run(url, plan, vacuum=not args.no_vacuum))
    total = time.monotonic() - began
    print(
        f"seeded {result.rows:,} ledger rows for {result.tenants} tenants, {result.users:,} end "
        f"users, {result.keys} keys; rollups: {result.rollup_rows:,} rows in usage_daily, "
        f"{result.user_rollup_rows:,} in usage_daily_users; "
        f"{total:.1f}s in all ({result.rows / max(total, 1e-9):,.0f} rows/s)"
    )


if __name__ == "__main__":
    main()
