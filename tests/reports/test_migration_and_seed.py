"""The rollup migration fills the rollups from an existing ledger and its downgrade puts the old
`tollgate_settle` back; the seeder's data is consistent (rollups and spend counters equal the
ledger) and its bulk mode restores every index and constraint it dropped."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import asyncpg
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.migrate import alembic_config, downgrade, upgrade
from api.reports.seed import SeedPlan, seed
from tests.pg import admin, asyncpg_dsn, new_name, with_database
from tests.reports.helpers import Usage, add_request, utc
from tests.reports.test_rollup import assert_rollups_equal_ledger
from tests.support import TenantKey

REVISION = "e5f7a9b1c3d5"
_SETTLE_SOURCE = "SELECT prosrc FROM pg_proc WHERE proname = 'tollgate_settle'"


def _parent(url: str) -> str:
    script = ScriptDirectory.from_config(alembic_config(url))
    parent = script.get_revision(REVISION).down_revision
    assert isinstance(parent, str)
    return parent


async def _settle_source(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        return str((await conn.execute(text(_SETTLE_SOURCE))).scalar_one())


async def test_upgrade_backfills_the_rollups_and_downgrade_restores_settle(
    database_url: str, pg_server: str, engine: AsyncEngine, tenant: TenantKey
) -> None:
    parent = _parent(database_url)
    # tollgate_settle as it is before this migration, from a database migrated only that far.
    name = new_name("tollgate_parent")
    await admin(pg_server, f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade, with_database(pg_server, name), parent)
        conn = await asyncpg.connect(asyncpg_dsn(with_database(pg_server, name)))
        try:
            before = await conn.fetchval(_SETTLE_SOURCE)
        finally:
            await conn.close()
    finally:
        await admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    at = utc("2026-10-01T00:00:00")
    for i in range(6):
        usage = Usage(input=i, output=2 * i, cost=Decimal(i) / 7)
        await add_request(engine, tenant.tenant_id, tenant.key_id, f"u{i % 2}", at, usage)
    await engine.dispose()
    await asyncio.to_thread(downgrade, database_url, parent)
    assert await _settle_source(engine) == before
    # Settled while the rollups do not exist (the old function): the upgrade must count them.
    for i in range(4):
        started = at + timedelta(hours=30 * i)
        await add_request(engine, tenant.tenant_id, tenant.key_id, None, started, Usage(input=7))
    await engine.dispose()
    await asyncio.to_thread(upgrade, database_url)
    assert "usage_daily_users" in await _settle_source(engine)
    assert await assert_rollups_equal_ledger(engine) == 10


async def test_seeded_data_is_consistent(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        result = await seed(conn, SeedPlan(rows=4000, tenants=4, users=30, days=20))
    assert (result.rows, result.tenants, result.keys) == (4000, 4, 2 + 3 + 4 + 2)
    assert await assert_rollups_equal_ledger(engine) == 4000
    counters = """
        SELECT c.tenant_id, c.end_user_id, c.period_start, c.spent_usd, c.requests
          FROM spend_counters c ORDER BY 1, 2, 3
    """
    ledger = """
        SELECT tenant_id, end_user_id, period_start, sum(cost_usd), count(*) FROM usage_ledger
         GROUP BY GROUPING SETS ((tenant_id, period_start), (tenant_id, end_user_id, period_start))
        HAVING GROUPING(end_user_id) = 1 OR end_user_id IS NOT NULL
         ORDER BY 1, 2, 3
    """
    async with engine.connect() as conn:
        got = [tuple(r) for r in await conn.execute(text(counters))]
        want = [tuple(r) for r in await conn.execute(text(ledger))]
        statuses = dict(
            (await conn.execute(text("SELECT status, count(*) FROM usage_ledger GROUP BY 1"))).all()
        )
        span = (
            await conn.execute(text("SELECT max(started_at) - min(started_at) FROM usage_ledger"))
        ).scalar_one()
    assert got == want
    assert statuses["ok"] > 3600 and set(statuses) <= {
        "ok", "incomplete", "client_disconnected", "upstream_error", "timeout", "abandoned"
    }  # fmt: skip
    assert timedelta(days=19) < span <= timedelta(days=20)


async def test_bulk_seeding_restores_indexes_and_constraints_and_adds_to_what_is_there(
    engine: AsyncEngine,
) -> None:
    ddl = """
        SELECT indexdef FROM pg_indexes
         WHERE tablename IN ('usage_ledger', 'usage_daily', 'usage_daily_users')
        UNION ALL
        SELECT conname || pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid IN ('usage_ledger'::regclass, 'usage_daily'::regclass,
                            'usage_daily_users'::regclass)
        ORDER BY 1
    """
    async with engine.connect() as conn:
        before = [r[0] for r in await conn.execute(text(ddl))]
    for bulk in (False, True):
        async with engine.begin() as conn:
            await seed(conn, SeedPlan(rows=1500, tenants=3, users=10, days=5, bulk=bulk))
    async with engine.connect() as conn:
        after = [r[0] for r in await conn.execute(text(ddl))]
        tenants = (await conn.execute(text("SELECT count(*) FROM tenants"))).scalar_one()
    assert after == before and len(before) > 10
    assert tenants == 3  # the second run reused the seed tenants
    assert await assert_rollups_equal_ledger(engine) == 3000
