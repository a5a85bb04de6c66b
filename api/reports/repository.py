"""Running reports: the JSON body (rendered by Postgres, see `report_json`), or a CSV stream.
The one place reports are queried: `/admin/usage`, `tollgate usage` and the tenant's
`/v1/usage` (which scopes the query to the caller's tenant first) all read through here."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from api.reports.export import csv_statement, stream_copy
from api.reports.query import ReportQuery
from api.reports.sql import report_json

_CUSTOM_PLANS = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"


async def usage_report(conn: AsyncConnection, query: ReportQuery) -> str:
    """`{"rows": [...], "total": {...}}` as JSON text: one row per group (none without
    `group_by`), each with its group field(s) (`user` rows also name their `tenant`), the
    integer counters and `cost_usd` as a decimal string; the total is the rows' exact sum."""
    statement = report_json(query)
    # Plans for these values, every time: a cached generic plan cannot see how many days or
    # rows a window holds (measured: 108 ms instead of 70 ms from the sixth run on).
    await conn.exec_driver_sql(_CUSTOM_PLANS)
    result = await conn.exec_driver_sql(statement.text, tuple(statement.args))
    body: str = result.scalar_one()
    return body


def usage_csv(url: URL, query: ReportQuery) -> AsyncGenerator[bytes, None]:
    """The report as streamed CSV: grouped rows, or (without `group_by`) every ledger row."""
    return stream_copy(url, csv_statement(query))
