"""`GET /admin/usage?format=csv`: a download that Python's csv module (and so a spreadsheet)
reads back exactly, whose numbers add up to the JSON report's totals; without `group_by` one line
per final ledger row. It is streamed, and a client hanging up ends the export at once."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from api.pricing.cost import format_usd
from api.reports.seed import SeedPlan, seed
from tests.reports.conftest import HAIKU, Dataset
from tests.reports.helpers import COUNTERS, Usage, add_request, expected_report, final_ledger, utc
from tests.support import wait_until

LINE_COLUMNS = [
    "request_id",
    "started_at",
    "tenant",
    "key",
    "user",
    "model",
    "endpoint",
    "status",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cost_usd",
]


async def _csv(admin: httpx.AsyncClient, params: dict[str, str]) -> list[dict[str, str]]:
    response = await admin.get("/admin/usage", params={**params, "format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="usage') and disposition.endswith('.csv"')
    text_ = response.content.decode("utf-8")  # strict: the bytes are UTF-8
    return list(csv.DictReader(io.StringIO(text_, newline="")))


def _sums(rows: list[dict[str, str]]) -> dict[str, Any]:
    total: dict[str, Any] = {name: sum(int(r[name]) for r in rows) for name in COUNTERS[1:]}
    if rows and "requests" in rows[0]:
        total["requests"] = sum(int(r["requests"]) for r in rows)
    else:
        total["requests"] = len(rows)
    total["cost_usd"] = format_usd(sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0)))
    return total


async def test_grouped_csv_has_the_json_rows_and_totals(
    admin: httpx.AsyncClient, engine: AsyncEngine, dataset: Dataset
) -> None:
    window = {"from": "2026-10-02T06:00:00Z", "to": "2026-10-09"}
    for group_by, keys in [
        ("tenant", ["tenant"]),
        ("user", ["tenant", "user"]),
        ("model", ["model"]),
        ("key", ["key"]),
        ("day", ["day"]),
    ]:
        rows = await _csv(admin, {**window, "group_by": group_by})
        report = (await admin.get("/admin/usage", params={**window, "group_by": group_by})).json()
        assert list(rows[0]) == [*keys, *COUNTERS, "cost_usd"]
        assert _sums(rows) == report["total"], group_by
        assert len(rows) == len(report["rows"])
        assert [r[keys[-1]] or None for r in rows] == [
            _spreadsheet_safe(r[keys[-1]]) for r in report["rows"]
        ]


def _spreadsheet_safe(value: str | None) -> str | None:
    if value is not None and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def test_full_csv_is_one_line_per_final_ledger_row(
    admin: httpx.AsyncClient, engine: AsyncEngine, dataset: Dataset
) -> None:
    params = {"from": "2026-10-03", "to": "2026-10-08T12:00:00Z", "model": HAIKU}
    rows = await _csv(admin, params)
    ledger = await final_ledger(engine)
    expected = expected_report(ledger, params)["total"]
    assert list(rows[0]) == LINE_COLUMNS
    assert _sums(rows) == expected
    assert len({r["request_id"] for r in rows}) == len(rows) == expected["requests"]
    started = [r["started_at"] for r in rows]
    assert started == sorted(started) and all(s.endswith("Z") and "T" in s for s in started)
    assert {r["status"] for r in rows} <= {"ok", "incomplete", "client_disconnected",
                                             "upstream_error", "timeout", "abandoned"}  # fmt: skip
    # A formula-looking end user id is defused for spreadsheets: a leading apostrophe.
    assert "'=HYPERLINK(1)" in {r["user"] for r in rows}
    assert "=HYPERLINK(1)" not in {r["user"] for r in rows}


async def test_quotes_commas_newlines_and_unicode_survive(
    admin: httpx.AsyncClient, engine: AsyncEngine, dataset: Dataset
) -> None:
    odd = 'O"Neil, Jr.\nline two; zoë 日本'
    a = dataset.a
    await add_request(engine, a.tenant_id, a.key_id, odd, utc("2026-11-11T11:11:11"), Usage())
    one_day = {"from": "2026-11-11", "to": "2026-11-12"}
    lines = await _csv(admin, one_day)
    assert [r["user"] for r in lines] == [odd]
    grouped = await _csv(admin, {**one_day, "group_by": "user"})
    assert [(r["user"], r["requests"]) for r in grouped] == [(odd, "1")]


async def test_an_empty_report_is_a_header_only(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/admin/usage", params={"format": "csv", "group_by": "day"})
    assert response.text.splitlines() == [
        "day,requests,input_tokens,output_tokens,cache_creation_input_tokens,"
        "cache_read_input_tokens,cost_usd"
    ]


async def _copies(engine: AsyncEngine) -> int:
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND query LIKE 'COPY (%'"
    )
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def seed_like_the_cli(database_url: str, plan: SeedPlan) -> None:
    """Big data the way `tollgate dev seed` makes it: generated inside Postgres, on a session of
    its own without the app's per-statement timeout (which is for request-path queries)."""
    seeder = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with seeder.begin() as conn:
            await seed(conn, plan)
    finally:
        await seeder.dispose()


async def test_a_client_hanging_up_ends_the_export(
    admin: httpx.AsyncClient, engine: AsyncEngine, database_url: str
) -> None:
    await seed_like_the_cli(database_url, SeedPlan(rows=150_000, tenants=3, users=20, days=30))
    async with admin.stream("GET", "/admin/usage", params={"format": "csv"}) as response:
        assert response.status_code == 200
        chunks = response.aiter_raw()
        first = await anext(chunks)
        assert first.startswith(b"request_id,started_at,")
        assert await _copies(engine) == 1  # still streaming

    # The export's connection is closed (the fixture also checks the app's pool is intact).
    async def gone() -> bool:
        return await _copies(engine) == 0

    await wait_until(gone, timeout_s=60)
    health = await admin.get("/admin/usage", params={"group_by": "tenant"})
    assert health.status_code == 200 and health.json()["total"]["requests"] == 150_000
