"""Reports separate batch rows: `endpoint=` filters and `group_by=endpoint` groups, on
`/admin/usage`, the tenant's `/v1/usage` and the CSV exports, from the rollup (whole days) and
the ledger (partial-day edges) alike. Totals below are computed by hand.

The batch rows are written the way the settler writes them: `tollgate_reserve_batch`, then
`tollgate_settle_batch_result` per result."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.db.migrate import alembic_config, downgrade, upgrade
from tests.reports.helpers import Usage, add_request, utc
from tests.reports.test_rollup import assert_rollups_equal_ledger
from tests.support import Gateway, TenantKey, make_tenant_key

HAIKU = "claude-haiku-4-5"
D = Decimal

_RESERVE = text(
    """
    SELECT outcome FROM tollgate_reserve_batch(
        :batch, :tenant, :key, :started, date_trunc('month', CAST(:started AS timestamptz), 'UTC'),
        date_trunc('month', CAST(:started AS timestamptz), 'UTC') + interval '1 month', 'tests',
        CAST(:ids AS text[]), CAST(:users AS uuid[]), CAST(:models AS text[]),
        CAST(:amounts AS numeric[]), CAST(:amounts AS numeric[]))
    """
)
_SETTLE = text(
    """
    SELECT tollgate_settle_batch_result(:batch, :custom_id, :status, :model, :input, :output,
        0, 0, 0, 0, :cost, 'test', :started, NULL, NULL)
    """
)


async def _batch(engine: AsyncEngine, t: TenantKey, started: datetime) -> None:
    """b1 and b2 succeed (40 + 60 input, 4 + 6 output, $0.0004 + $0.0006); b3 errored ($0)."""
    results = [("b1", "ok", 40, 4, D("0.0004")), ("b2", "ok", 60, 6, D("0.0006"))]
    results.append(("b3", "upstream_error", 0, 0, D(0)))
    batch = uuid.uuid4()
    params = {"batch": batch, "tenant": t.tenant_id, "key": t.key_id, "started": started}
    params |= {"ids": ["b1", "b2", "b3"], "users": [None] * 3, "models": [HAIKU] * 3}
    async with engine.begin() as conn:
        reserved = await conn.scalar(_RESERVE, params | {"amounts": [D("0.01")] * 3})
        assert reserved == "ok"
    for custom_id, status, input_, output, cost in results:
        row = {"custom_id": custom_id, "status": status, "input": input_, "output": output}
        async with engine.begin() as conn:
            settled = {"batch": batch, "model": HAIKU, "cost": cost, "started": started}
            assert await conn.scalar(_SETTLE, settled | row)


def _before(url: str, revision: str) -> str:
    """The revision `revision` follows."""
    parent = ScriptDirectory.from_config(alembic_config(url)).get_revision(revision).down_revision
    assert isinstance(parent, str)
    return parent


@pytest.fixture
async def tenant_rows(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> TenantKey:
    t = await make_tenant_key(sessions, name="endpoints")
    other = await make_tenant_key(sessions, name="elsewhere")  # never in t's reports
    for who, at, endpoint, usage in (
        (t, "2026-10-05T10:00:00", "messages", Usage(HAIKU, 100, 10, cost=D("0.001"))),
        (t, "2026-10-05T12:00:00", "chat_completions", Usage(HAIKU, 200, 20, cost=D("0.002"))),
        (t, "2026-10-06T23:30:00", "messages", Usage(HAIKU, 300, 30, cost=D("0.003"))),
        (other, "2026-10-06T09:00:00", "batch", Usage(HAIKU, 7, 7, cost=D("0.7"))),
    ):
        await add_request(engine, who.tenant_id, who.key_id, None, utc(at), usage, endpoint)
    await _batch(engine, t, utc("2026-10-06T08:00:00"))
    return t


def _totals(requests: int, input_: int, output: int, cost: str) -> dict[str, Any]:
    return {
        "requests": requests,
        "input_tokens": input_,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cost_usd": cost,
    }


MESSAGES = _totals(2, 400, 40, "0.004")
CHAT = _totals(1, 200, 20, "0.002")
BATCH = _totals(3, 100, 10, "0.001")  # b3 errored: a request, at cost 0
ALL = _totals(6, 700, 70, "0.007")
BY_ENDPOINT = [  # largest cost first
    {"endpoint": "messages", **MESSAGES},
    {"endpoint": "chat_completions", **CHAT},
    {"endpoint": "batch", **BATCH},
]
WHOLE_DAYS = {"from": "2026-10-05", "to": "2026-10-07"}  # the rollup answers
# The ledger answers [10-05 11:00, 10-06 00:00) (chat, not the 10:00 messages row), the rollup
# 2026-10-06 (the batch and the 23:30 messages row).
MIXED = {"from": "2026-10-05T11:00:00Z", "to": "2026-10-07"}
AROUND_BATCH = {"from": "2026-10-06T07:00:00Z", "to": "2026-10-06T09:00:00Z"}  # ledger only


async def _admin(admin: httpx.AsyncClient, params: dict[str, str]) -> Any:
    response = await admin.get("/admin/usage", params=params)
    assert response.status_code == 200, response.text
    return response.json() if params.get("format") != "csv" else response.text


async def test_group_by_endpoint_separates_batch_rows(
    admin: httpx.AsyncClient, tenant_rows: TenantKey
) -> None:
    scope = {"tenant_id": str(tenant_rows.tenant_id), "group_by": "endpoint"}
    for window in ({}, WHOLE_DAYS):
        body = await _admin(admin, scope | window)
        assert body == {"rows": BY_ENDPOINT, "total": ALL}
    body = await _admin(admin, scope | MIXED)
    messages = {"endpoint": "messages", **_totals(1, 300, 30, "0.003")}
    expected = [messages, {"endpoint": "chat_completions", **CHAT}, {"endpoint": "batch", **BATCH}]
    assert body == {"rows": expected, "total": _totals(5, 600, 60, "0.006")}
    body = await _admin(admin, scope | AROUND_BATCH)
    assert body == {"rows": [{"endpoint": "batch", **BATCH}], "total": BATCH}


async def test_endpoint_filter_reads_only_that_endpoint(
    admin: httpx.AsyncClient, tenant_rows: TenantKey
) -> None:
    tenant = {"tenant_id": str(tenant_rows.tenant_id)}
    for window in ({}, WHOLE_DAYS, MIXED, AROUND_BATCH):
        body = await _admin(admin, tenant | window | {"endpoint": "batch", "group_by": "day"})
        assert body == {"rows": [{"day": "2026-10-06", **BATCH}], "total": BATCH}
    body = await _admin(admin, tenant | WHOLE_DAYS | {"endpoint": "messages"})
    assert body == {"rows": [], "total": MESSAGES}
    body = await _admin(admin, tenant | {"endpoint": "messages", "group_by": "day"})
    assert [r["day"] for r in body["rows"]] == ["2026-10-05", "2026-10-06"]
    # Across tenants, only the other tenant's batch row joins.
    body = await _admin(admin, {"endpoint": "batch", **WHOLE_DAYS})
    assert body["total"] == _totals(4, 107, 17, "0.701")


async def test_tenant_usage_groups_and_filters_by_endpoint(
    admin_gateway: Gateway, tenant_rows: TenantKey
) -> None:
    async with httpx.AsyncClient(base_url=admin_gateway.url) as http:
        headers = {"x-api-key": tenant_rows.key}
        grouped = await http.get("/v1/usage", params={"group_by": "endpoint"}, headers=headers)
        batch = await http.get("/v1/usage", params={"endpoint": "batch"}, headers=headers)
        too_long = await http.get("/v1/usage", params={"endpoint": "x" * 33}, headers=headers)
    assert grouped.json() == {"rows": BY_ENDPOINT, "total": ALL}
    assert batch.json() == {"rows": [], "total": BATCH}
    assert too_long.status_code == 400 and "endpoint:" in too_long.text


async def test_csv_by_endpoint_and_batch_lines(
    admin: httpx.AsyncClient, tenant_rows: TenantKey
) -> None:
    tenant = {"tenant_id": str(tenant_rows.tenant_id), "format": "csv"}
    by_endpoint = await _admin(admin, tenant | {"group_by": "endpoint"})
    grouped = list(csv.DictReader(io.StringIO(by_endpoint)))
    assert [(r["endpoint"], r["requests"], r["cost_usd"]) for r in grouped] == [
        ("messages", "2", "0.004"),
        ("chat_completions", "1", "0.002"),
        ("batch", "3", "0.001"),
    ]
    lines = list(csv.DictReader(io.StringIO(await _admin(admin, tenant | {"endpoint": "batch"}))))
    assert sorted((r["endpoint"], r["status"], r["cost_usd"]) for r in lines) == [
        ("batch", "ok", "0.0004"),
        ("batch", "ok", "0.0006"),
        ("batch", "upstream_error", "0"),
    ]


async def test_the_migration_splits_the_rollup_by_endpoint_and_downgrade_folds_it(
    database_url: str, engine: AsyncEngine, tenant_rows: TenantKey
) -> None:
    """Upgrading rebuilds `usage_daily` from the ledger, per endpoint; downgrading folds the
    endpoints back into one row per (tenant, day, key, user, model)."""
    daily = "SELECT count(*) FROM usage_daily WHERE tenant_id = :t AND day = '2026-10-05'"
    async with engine.connect() as conn:
        assert await conn.scalar(text(daily), {"t": tenant_rows.tenant_id}) == 2
    await engine.dispose()
    await asyncio.to_thread(downgrade, database_url, _before(database_url, "3e5a7c9b1d42"))
    async with engine.connect() as conn:
        assert await conn.scalar(text(daily), {"t": tenant_rows.tenant_id}) == 1
    await engine.dispose()
    await asyncio.to_thread(upgrade, database_url)
    assert await assert_rollups_equal_ledger(engine) == 7
