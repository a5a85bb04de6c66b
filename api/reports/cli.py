"""What `tollgate usage` and `tollgate dev-seed` do (their arguments live in api/commands.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from starlette.datastructures import QueryParams

from api.reports.params import parse_report
from api.reports.query import Format, ReportQuery
from api.reports.repository import usage_csv, usage_report
from api.reports.seed import SeedPlan, SeedResult, seed


async def _print_report(url: str, query: ReportQuery) -> None:
    if query.format is Format.csv:
        async for chunk in usage_csv(make_url(url), query):
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    engine = create_async_engine(url, poolclass=NullPool, hide_parameters=True)
    try:
        async with engine.connect() as conn:
            body = await usage_report(conn, query)
    finally:
        await engine.dispose()
    print(json.dumps(json.loads(body), indent=2))


def usage_command(url: str, options: Mapping[str, str | None]) -> None:
    """Print the report `GET /admin/usage` would give for these parameters (same names, same
    checks and messages)."""
    query = parse_report(QueryParams({k: v for k, v in options.items() if v is not None}))
    asyncio.run(_print_report(url, query))


async def _seed(url: str, plan: SeedPlan) -> SeedResult:
    engine = create_async_engine(url, poolclass=NullPool, hide_parameters=True)
    try:
        async with engine.begin() as conn:
            return await seed(conn, plan)
    finally:
        await engine.dispose()


def dev_seed_command(url: str, plan: SeedPlan) -> None:
    result = asyncio.run(_seed(url, plan))
    print(
        f"added {result.rows:,} ledger rows over the last {plan.days} days for {result.tenants} "
        f"tenants (seed-tenant-NN), {result.users:,} end users and {result.keys} keys, "
        f"in {result.seconds}s; the rollups and spend counters of those tenants were rebuilt"
    )
