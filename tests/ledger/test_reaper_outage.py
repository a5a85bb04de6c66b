"""After Postgres was unreachable every heartbeat is old, the live processes' too. A reaper that
ran at once would return a live process's leases and settle its running requests as
`abandoned` (and their costs would then land on top of budget handed back: overshoot). So a
reaper reaps nothing for a whole stale window after it reaches the database again; without an
outage it reaps a silent process's lease as before."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.engine import make_engine, make_sessionmaker
from api.ledger.leases import LeaseBook, Subject
from api.ledger.reaper import Reaper
from tests.ledger.lease_model import PERIOD
from tests.pg import StoppablePostgres
from tests.support import make_tenant_key

STALE_S = 3600.0  # no heartbeat goes stale by itself during the test


async def _lease_of_a_silent_process(engine: AsyncEngine) -> None:
    """Owner `other` takes a lease, then its heartbeat is made older than the stale window (as
    every heartbeat is after a long outage)."""
    key = await make_tenant_key(make_sessionmaker(engine))
    book = LeaseBook("other", STALE_S)
    auto = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with auto.connect() as conn:
        await conn.execute(
            text("INSERT INTO server_heartbeats (owner, last_seen) VALUES ('other', now())")
        )
        book.heartbeat_sent(time.monotonic())
        refill = await book.refill_for(
            conn,
            Subject(key.tenant_id, None, *PERIOD),
            key=None,
            want_usd=Decimal(1),
            min_usd=Decimal(0),
            want_slots=4,
            min_slots=1,
            want_permits=0,
            min_rpm=1,
        )
        assert refill is not None and refill.usd == 1
        await conn.execute(
            text(
                "UPDATE server_heartbeats SET last_seen = now() - make_interval(secs => :s) "
                "WHERE owner = 'other'"
            ),
            {"s": 2 * STALE_S},
        )


async def _leases(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM budget_leases"))).scalar_one())


async def test_a_silent_process_lease_is_reaped_without_an_outage(
    stoppable_db: tuple[StoppablePostgres, str],
) -> None:
    _, url = stoppable_db
    engine = make_engine(url, pool_size=2)
    try:
        await _lease_of_a_silent_process(engine)
        reaper = Reaper(engine, "reaper", STALE_S)
        await reaper.tick()
        assert await _leases(engine) == 0
    finally:
        await engine.dispose()


async def test_after_an_outage_nothing_is_reaped_for_a_stale_window(
    stoppable_db: tuple[StoppablePostgres, str],
) -> None:
    pg, url = stoppable_db
    engine = make_engine(url, pool_size=2)
    try:
        await _lease_of_a_silent_process(engine)
        reaper = Reaper(engine, "reaper", STALE_S)
        await asyncio.to_thread(pg.stop)
        await reaper.tick()  # the database cannot be reached: nothing happens
        await asyncio.to_thread(pg.start)
        await reaper.tick()  # back: the heartbeat lands, the reap waits
        await reaper.tick()
        await reaper.tick()
        assert await _leases(engine) == 1
        async with engine.connect() as conn:
            beats = (await conn.execute(text("SELECT owner FROM server_heartbeats"))).scalars()
            assert "reaper" in set(beats)
    finally:
        await engine.dispose()
