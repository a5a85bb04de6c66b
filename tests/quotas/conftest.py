"""Two real `tollgate serve` processes sharing one database, and tenants with chosen limits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.gate import UpstreamGate, gated_upstream
from tests.pg import admin, asyncpg_dsn, new_name, with_database
from tests.support import ServeProcess, spawn_servers


@pytest.fixture
def gate() -> Iterator[UpstreamGate]:
    """The upstream of `two_servers`: the simulator behind a gate (open unless a test closes
    it)."""
    with gated_upstream() as upstream:
        yield upstream


async def module_database(pg_server: str, template_db: str) -> AsyncIterator[str]:
    """A database shared by every test of one module (each test uses its own tenant): use as
    `database_url = pytest.fixture(scope="module", name="database_url")(module_database)`
    where starting two servers per test would be most of the module's time."""
    name = new_name("tollgate_test")
    await admin(pg_server, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    try:
        yield with_database(pg_server, name)
    finally:
        await admin(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def module_gate() -> Iterator[UpstreamGate]:
    """The gated upstream shared by one module's tests (see `module_database`)."""
    with gated_upstream() as upstream:
        yield upstream


@pytest.fixture
def two_servers(
    database_url: str, gate: UpstreamGate, tmp_path: Path
) -> Iterator[list[ServeProcess]]:
    servers = spawn_servers(serve_envs(database_url, gate, tmp_path))
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def serve_envs(
    database_url: str, gate: UpstreamGate, tmp_path: Path
) -> list[tuple[dict[str, str], Path]]:
    """The environment (and log path) of each of the two `tollgate serve` processes."""
    return [
        (
            {
                "DATABASE_URL": asyncpg_dsn(database_url),
                "TOLLGATE_UPSTREAM": "simulated",
                "ANTHROPIC_BASE_URL": gate.url,
                "TOLLGATE_UPSTREAM_TIMEOUT_S": "600",  # a closed gate holds requests
                "TOLLGATE_DATA_DIR": str(tmp_path / f"data{n}"),
                "TOLLGATE_KEY_CACHE_TTL_S": "1",
                # Short enough for the crash test, long enough that a busy machine's late
                # heartbeat never gets a live server's requests reaped.
                "TOLLGATE_REAPER_STALE_S": "10",
                "TOLLGATE_UPSTREAM_MAX_RETRIES": "0",
            },
            tmp_path / f"serve{n}.log",
        )
        for n in range(2)
    ]


async def set_limits(
    engine: AsyncEngine,
    tenant_id: uuid.UUID,
    *,
    budget: Decimal | None = None,
    rpm: int = 100_000,
    concurrency: int = 10_000,
    user_budget: Decimal | None = None,
    mode: str | None = None,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE tenants SET monthly_budget_usd = :budget, rpm_limit = :rpm, "
                "max_concurrent = :conc, user_default_budget_usd = :user_budget, "
                "quota_mode = :mode WHERE id = :id"
            ),
            {
                "budget": budget,
                "rpm": rpm,
                "conc": concurrency,
                "user_budget": user_budget,
                "mode": mode,
                "id": tenant_id,
            },
        )
