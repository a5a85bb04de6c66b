"""Shared fixtures: a real Postgres (see tests/pg.py), one fresh database per test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.db.engine import make_engine, make_sessionmaker
from api.db.migrate import upgrade
from billing.settings import BillingSettings
from tests.pg import (
    Clones,
    StoppablePostgres,
    migrated_template,
    postgres_server,
    with_database,
)
from tests.support import Gateway, TenantKey, gateway_settings, make_tenant_key, start_gateway


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> Iterator[str]:
    with migrated_template(pg_server) as name:
        yield name


@pytest.fixture(scope="session")
def clones(pg_server: str, template_db: str) -> Iterator[Clones]:
    pool = Clones(pg_server, template_db)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
async def database_url(pg_server: str, clones: Clones) -> AsyncIterator[str]:
    """An isolated, migrated database for one test (cloned from the template ahead of need,
    dropped after the test)."""
    name = await asyncio.to_thread(clones.take)
    try:
        yield with_database(pg_server, name)
    finally:
        clones.drop(name)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url, pool_size=5)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture(scope="session")
def simulator() -> Iterator[str]:
    """The simulated Anthropic API, shared by the session; per-request knobs are headers."""
    from api.simulator import start_simulator_thread

    sim = start_simulator_thread()
    try:
        yield sim.url
    finally:
        sim.stop()


@pytest.fixture
def gateway_factory(
    database_url: str, simulator: str, tmp_path: Path
) -> Iterator[Callable[..., Gateway]]:
    """Start Tollgate in a uvicorn thread with settings overrides; stopped after the test."""
    started: list[Gateway] = []

    def start(billing: BillingSettings | None = None, **overrides: object) -> Gateway:
        settings = gateway_settings(tmp_path / "data", simulator, **overrides)
        gw = start_gateway(settings, database_url, billing)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        pool = gw.state.engine.pool
        deadline = time.monotonic() + 30  # generous: a slow machine returns them late
        while pool.checkedout() and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.02)
        leaked = pool.checkedout()  # type: ignore[attr-defined]
        gw.stop()
        assert leaked == 0, f"{leaked} database connections still checked out after the test"


@pytest.fixture
def gateway(gateway_factory: Callable[..., Gateway]) -> Gateway:
    return gateway_factory()


@pytest.fixture
async def tenant(sessions: async_sessionmaker[AsyncSession]) -> TenantKey:
    return await make_tenant_key(sessions, name="acme")


@pytest.fixture
def stoppable_db(tmp_path: Path) -> Iterator[tuple[StoppablePostgres, str]]:
    """A private embedded Postgres (migrated database `tollgate`) that the test may stop and
    start again: (server, database URL)."""
    pg = StoppablePostgres(tmp_path / "pg-root")
    url = with_database(pg.url, "tollgate")
    upgrade(url)
    try:
        yield pg, url
    finally:
        pg.close()
