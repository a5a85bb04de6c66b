"""`tollgate dev-seed` fills a dev database consistently; `tollgate usage` prints the report
`GET /admin/usage` gives (JSON or CSV), and a bad option is one line naming it."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.reports.test_rollup import assert_rollups_equal_ledger
from tests.test_cli import one_line, tollgate


async def test_dev_seed_then_usage_agrees_with_the_admin_api(
    database_url: str, engine: AsyncEngine, admin: httpx.AsyncClient
) -> None:
    env = {"DATABASE_URL": database_url}
    seeded = tollgate("dev-seed", "--rows", "800", "--tenants", "2", "--users", "6", env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert "added 800 ledger rows" in seeded.stdout
    assert await assert_rollups_equal_ledger(engine) == 800

    printed = tollgate("usage", "--group-by", "user", "--from", "2020-01-01", env=env)
    assert printed.returncode == 0, printed.stderr
    api = await admin.get("/admin/usage", params={"group_by": "user", "from": "2020-01-01"})
    assert json.loads(printed.stdout) == api.json()
    assert api.json()["total"]["requests"] == 800
    # By default the rows fall in the dashboard's default range, the last 30 days (UTC).
    start = (datetime.now(UTC).date() - timedelta(days=29)).isoformat()
    recent = await admin.get("/admin/usage", params={"group_by": "day", "from": start})
    assert recent.json()["total"]["requests"] == 800

    exported = tollgate("usage", "--format", "csv", "--group-by", "day", env=env)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout, newline="")))
    assert sum(int(r["requests"]) for r in rows) == 800


def test_usage_with_a_bad_option_is_one_line(database_url: str) -> None:
    result = tollgate("usage", "--group-by", "week", env={"DATABASE_URL": database_url})
    assert result.returncode == 1
    assert one_line(result).startswith("tollgate: group_by: must be one of")
