"""Migration 2026-11-30-1600_unique_tenant_names: existing duplicate names are renamed (the
oldest keeps the name), then the database refuses a duplicate."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from api.db.migrate import downgrade, upgrade
from tests.pg import asyncpg_dsn

BEFORE = "c4e6a8f0b2d4"
UNIQUE_NAMES = "a1c3e5f7b9d2"

# (name, created this many minutes ago): three "acme" and a tenant already called "acme (2)".
TENANTS = [("acme", 30), ("acme", 20), ("acme", 10), ("acme (2)", 40), ("globex", 5)]


async def test_duplicates_are_renamed_oldest_first_then_refused(database_url: str) -> None:
    await asyncio.to_thread(downgrade, database_url, BEFORE)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        ids = [
            await conn.fetchval(
                "INSERT INTO tenants (id, name, plan_code, created_at) VALUES "
                "(gen_random_uuid(), $1, 'free', now() - make_interval(mins => $2)) RETURNING id",
                name,
                minutes,
            )
            for name, minutes in TENANTS
        ]
        await asyncio.to_thread(upgrade, database_url, UNIQUE_NAMES)
        rows = await conn.fetch("SELECT id, name FROM tenants")
        names = {row["id"]: row["name"] for row in rows}
        assert [names[i] for i in ids] == ["acme", "acme (3)", "acme (4)", "acme (2)", "globex"]
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO tenants (id, name, plan_code) "
                "VALUES (gen_random_uuid(), 'acme', 'free')"
            )
    finally:
        await conn.close()
    await asyncio.to_thread(downgrade, database_url, BEFORE)  # reversible
    await asyncio.to_thread(upgrade, database_url)
