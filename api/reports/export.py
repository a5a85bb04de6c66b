"""CSV exports, streamed. Postgres writes the CSV itself (`COPY (query) TO STDOUT (FORMAT
csv, HEADER)`: RFC 4180 quoting, UTF-8) and the bytes are relayed as they arrive, a few chunks
at a time: asyncpg stops reading the socket until each chunk is handed on, and the client's
socket paces the handing on, so memory stays flat whatever the export's size.

An export runs on its own connection (not the app's pool, which the metered request path needs)
and ends when the client hangs up. Free-text cells that a spreadsheet would run as a formula
(`=`, `+`, `-`, `@`, tab, CR first) get a leading `'`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from api.reports.query import GroupBy, ReportQuery
from api.reports.sql import COUNTERS, Statement, aggregate, filters, order_by, time_range

EXPORT_TIMEOUT_S = 3600.0
"""The longest an export may take (the COPY, including a slow client's reading)."""

_QUEUE_CHUNKS = 4


def _safe(expr: str) -> str:
    return (
        f"CASE WHEN left({expr}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') "
        f"THEN '''' || {expr} ELSE {expr} END"
    )


_GROUP_CELLS: dict[GroupBy, tuple[str, ...]] = {
    GroupBy.tenant: ('a.tenant_id AS "tenant"',),
    GroupBy.user: ('a.tenant_id AS "tenant"', f'{_safe("a.external_id")} AS "user"'),
    GroupBy.model: (f'{_safe("a.model")} AS "model"',),
    GroupBy.key: ('a.api_key_id AS "key"',),
    GroupBy.day: ("to_char(a.day, 'YYYY-MM-DD') AS \"day\"",),
    GroupBy.endpoint: ('a.endpoint AS "endpoint"',),
}


def grouped_csv(query: ReportQuery) -> Statement:
    """The aggregate report as CSV cells: the group columns, the counters, the cost."""
    inner = aggregate(query)
    cells = list(_GROUP_CELLS[query.group_by]) if query.group_by is not None else []
    cells += [f'a.{c} AS "{c}"' for c in COUNTERS]
    cells.append('trim_scale(a.cost_usd) AS "cost_usd"')
    text = f"SELECT {', '.join(cells)} FROM ({inner.text}) a"  # noqa: S608 (constant parts)
    if query.group_by is not None:
        text += f" ORDER BY {order_by(query.group_by, 'a')}"
    return Statement(text, inner.args)


def ledger_csv(query: ReportQuery) -> Statement:
    """One line per final ledger row in the window, oldest first (the full export)."""
    st = Statement()
    where = [
        "l.status <> 'in_flight'",
        *filters(query, st, "l"),
        *time_range(query.window, st, "l"),
    ]
    cells = (
        'l.id AS "request_id"',
        "to_char(l.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
        'AS "started_at"',
        'l.tenant_id AS "tenant"',
        'l.api_key_id AS "key"',
        f'{_safe("u.external_id")} AS "user"',
        f'{_safe("l.model")} AS "model"',
        'l.endpoint AS "endpoint"',
        'l.status AS "status"',
        'l.input_tokens AS "input_tokens"',
        'l.output_tokens AS "output_tokens"',
        'l.cache_write_5m_tokens + l.cache_write_1h_tokens AS "cache_creation_input_tokens"',
        'l.cache_read_tokens AS "cache_read_input_tokens"',
        'trim_scale(l.cost_usd) AS "cost_usd"',
    )
    st.text = (
        f"SELECT {', '.join(cells)} FROM usage_ledger l "  # noqa: S608 (constant parts)
        "LEFT JOIN end_users u ON u.id = l.end_user_id "
        f"WHERE {' AND '.join(where)} ORDER BY l.started_at"
    )
    return st


def csv_statement(query: ReportQuery) -> Statement:
    return ledger_csv(query) if query.group_by is None else grouped_csv(query)


async def stream_copy(url: URL, statement: Statement) -> AsyncGenerator[bytes, None]:
    """The CSV bytes of `COPY (statement) TO STDOUT`, header first, on a connection of its
    own that is closed when the export ends or the consumer stops."""
    engine = create_async_engine(
        url, poolclass=NullPool, hide_parameters=True, connect_args={"timeout": 10}
    )
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection  # asyncpg.Connection
            finished = False
            try:
                async for chunk in _copy_out(driver, statement):
                    yield chunk
                finished = True
            finally:
                if not finished:
                    # Stopped early (client gone, or an error): drop the connection rather than
                    # wait for the server to notice; that ends the COPY at once.
                    await conn.invalidate()
    finally:
        await engine.dispose()


async def _copy_out(driver: Any, statement: Statement) -> AsyncGenerator[bytes, None]:
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=_QUEUE_CHUNKS)

    async def sink(chunk: bytearray) -> None:
        await queue.put(bytes(chunk))  # asyncpg hands out bytearrays; responses want bytes

    copy: asyncio.Task[str] = asyncio.create_task(
        driver.copy_from_query(
            statement.text,
            *statement.args,
            output=sink,
            format="csv",
            header=True,
            timeout=EXPORT_TIMEOUT_S,
        )
    )
    getter: asyncio.Future[bytes] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait((getter, copy), return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                break
            yield getter.result()
        getter.cancel()
        while not queue.empty():
            yield queue.get_nowait()
        copy.result()  # raise what the COPY raised, if anything
    finally:
        for task in (getter, copy):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(copy, return_exceptions=True)
