"""Crash safety. Every server process writes a heartbeat; a reaper (any replica may run it,
a Postgres advisory lock lets only one act at a time) settles the in-flight rows of processes
whose heartbeat went stale as `abandoned`, releasing their reservations and concurrency slots.
If the dead process had spooled the real settlement, replaying it later still lands (see
`tollgate_settle`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.errors import DB_ERRORS

log = logging.getLogger(__name__)

REAPER_LOCK = 0x70_11_6A_7E  # pg advisory lock key: "tollgate reaper"
MAX_STREAM_AGE_S = 6 * 3600  # an in-flight row older than this is reaped whoever holds it
BATCH = 200

_HEARTBEAT = text(
    "INSERT INTO server_heartbeats (owner, last_seen) VALUES (:owner, now()) "
    "ON CONFLICT (owner) DO UPDATE SET last_seen = now()"
)
_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")
_REAP = text(
    """
    SELECT count(*) FILTER (WHERE tollgate_settle(
        l.id, 'abandoned', l.model, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, now(), NULL, NULL,
        'abandoned'))
    FROM (
        SELECT l.id, l.model FROM usage_ledger l
        WHERE l.status = 'in_flight'
          AND l.started_at < now() - make_interval(secs => :stale)
          AND (l.started_at < now() - make_interval(secs => :max_age)
               OR NOT EXISTS (
                   SELECT 1 FROM server_heartbeats h
                   WHERE h.owner = l.owner
                     AND h.last_seen > now() - make_interval(secs => :stale)))
        ORDER BY l.started_at
        LIMIT :batch
    ) l
    """
)
_REAP_LEASES = text("SELECT tollgate_reap_leases(:stale, :batch)")
_TIDY = (
    text("DELETE FROM rate_windows WHERE window_start < now() - interval '2 minutes'"),
    text("DELETE FROM server_heartbeats WHERE last_seen < now() - interval '1 day'"),
)


class Reaper:
    def __init__(
        self,
        engine: AsyncEngine,
        owner: str,
        stale_after_s: float = 30.0,
        *,
        on_beat: Callable[[float], None] | None = None,
    ) -> None:
        self._engine = engine
        self.owner = owner
        self.stale_after_s = stale_after_s
        self._on_beat = on_beat  # told when a heartbeat sent at (monotonic) time t committed
        self._task: asyncio.Task[None] | None = None
        self._ticks = 0
        self._down = False  # the last tick could not reach the database
        self._no_reap_before = 0.0  # monotonic: after an outage, every process gets to beat

    async def heartbeat(self) -> None:
        sent = time.monotonic()
        async with self._engine.begin() as conn:
            await conn.execute(_HEARTBEAT, {"owner": self.owner})
        if self._on_beat is not None:
            self._on_beat(sent)  # the lease book trusts its leases until a margin before stale

    async def reap_once(self) -> int:
        """Reap what dead processes left; 0 if another replica holds the reaper lock."""
        async with self._engine.begin() as conn:
            if not (await conn.execute(_LOCK, {"key": REAPER_LOCK})).scalar_one():
                return 0
            params = {"stale": self.stale_after_s, "max_age": MAX_STREAM_AGE_S, "batch": BATCH}
            reaped = int((await conn.execute(_REAP, params)).scalar_one())
            leases = int((await conn.execute(_REAP_LEASES, params)).scalar_one())
            for statement in _TIDY:
                await conn.execute(statement)
        if reaped or leases:
            log.warning(
                "reaped %d in-flight requests and %d leases of dead server processes",
                reaped,
                leases,
            )
        return reaped

    async def tick(self) -> None:
        """One beat: the heartbeat, and every other beat the reap. After the database was
        unreachable, nothing is reaped for a whole stale window: every heartbeat is old then,
        the live processes' too, and a reaper that ran first would take their leases and
        in-flight rows (overshoot and `abandoned` rows of requests that are still running)."""
        try:
            await self.heartbeat()
            if self._down:
                self._down = False
                self._no_reap_before = time.monotonic() + self.stale_after_s
                log.info("database back; reaping resumes in %.0f s", self.stale_after_s)
            if self._ticks % 2 == 0 and time.monotonic() >= self._no_reap_before:
                await self.reap_once()
        except DB_ERRORS:
            self._down = True  # try again next beat
        except Exception:
            log.exception("reaper failed")
        self._ticks += 1

    async def _run(self) -> None:
        beat = max(0.2, self.stale_after_s / 3)
        while True:
            await self.tick()
            await asyncio.sleep(beat)

    async def start(self) -> None:
        try:
            await self.heartbeat()  # before serving: our rows are never mistaken for orphans
        except DB_ERRORS:
            self._down = True  # as after an outage: the others get a stale window to beat
        self._task = asyncio.create_task(self._run(), name="quota-reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
