"""The ledger writer: opens in-flight rows per request (failing closed when the database is down
or too busy) and hands every settlement, and the start rows of lease-admitted requests, to the
batcher (api/ledger/batcher.py), which journals them and writes them in batches. A background
loop replays journal and spool files that no live batcher owns (a previous run's, a dead or
closed replica's) whenever the database answers, and releases this process's orphans.

Orphans: a reserve whose answer never reached us (our timeout fired after Postgres committed)
leaves an in-flight row, a reservation and a concurrency slot that no request will settle. The
writer knows every request id it has open (from just before the reserve is sent until its
settlement is in Postgres, spooled ones included), so any in-flight row of this owner that is
not in that set is an orphan: the loop voids it (`tollgate_void`: the row is deleted and its
reservation and slot released — the request never reached the upstream)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.errors import DB_ERRORS, unavailable
from api.ledger.batcher import LedgerBatcher, settle_from_record, start_from_record
from api.ledger.functions import (
    OpenRequest,
    Reservation,
    Settlement,
    own_in_flight,
    reserve,
    settle_many,
    start_leased_many,
    void,
)
from api.ledger.spool import Spool

log = logging.getLogger(__name__)


class LedgerWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        spool: Spool,
        *,
        admission_wait_s: float = 10.0,
        write_timeout_s: float = 30.0,
        drain_interval_s: float = 2.0,
        flush_s: float = 0.005,
        flush_max_rows: int = 500,
    ) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.spool = spool
        self.owner = spool.owner
        self._admission_wait = admission_wait_s
        self._timeout = self.write_timeout_s = write_timeout_s
        self._interval = drain_interval_s
        self._open: set[uuid.UUID] = set()  # reserve sent, settlement not yet in Postgres
        self.orphans_released = 0
        self._drainer: asyncio.Task[None] | None = None
        self.batcher = LedgerBatcher(
            engine,
            spool,
            flush_s=flush_s,
            max_rows=flush_max_rows,
            timeout_s=write_timeout_s,
        )
        self.batcher.on_landed(self._landed)

    def _landed(self, starts: list[uuid.UUID], settled: list[uuid.UUID]) -> None:
        for request_id in settled:
            self._open.discard(request_id)

    async def open(self, row: OpenRequest) -> Reservation:
        """Reserve and write the in-flight row (if every limit allows). A database that cannot
        be reached means 503; one that does not answer within the admission bound means 529.
        Either way the client is told nothing was spent, so a row Postgres committed anyway
        becomes an orphan that `release_orphans` voids."""
        self._open.add(row.id)
        try:
            async with asyncio.timeout(self._admission_wait), self._engine.connect() as conn:
                decision = await reserve(conn, row)
        except DB_ERRORS as exc:
            self._open.discard(row.id)
            refusal = unavailable(exc)
            log.warning(
                "ledger %s; refusing request (%s)",
                "busy" if refusal.status == 529 else "unavailable",
                type(exc).__name__,
                extra={"request_id": str(row.id)},
            )
            raise refusal from None
        if decision.outcome != "ok":
            self._open.discard(row.id)  # refused: no row was written
        return decision

    def start_leased(self, row: OpenRequest, lease_id: uuid.UUID) -> None:
        """A lease-admitted request's in-flight row: journaled now, written with the next
        batch."""
        self.batcher.start_row(row, lease_id)

    def settle(self, tenant_id: uuid.UUID | None, settlement: Settlement) -> None:
        """Make the row final: journaled now, written with the next batch (retried until the
        database takes it). Never raises for database trouble."""
        self.batcher.settle(tenant_id, settlement)

    async def drain_spool(self) -> int:
        """Replay every claimable journal and spool file (all claimed files at once: their
        starts, then their settlements, in one transaction), then delete them; returns how many
        records were replayed. Starts are idempotent by request id and settling only touches a
        row still in flight, so a replay counts once however often it runs."""
        paths = await asyncio.to_thread(self.spool.claim)
        if not paths:
            return 0
        starts: dict[str, list[tuple[OpenRequest, uuid.UUID]]] = {}
        settles: list[tuple[uuid.UUID, Settlement]] = []
        for path in paths:
            for record in await asyncio.to_thread(_read_all, self.spool, path):
                if record.get("kind") == "start":
                    row, lease_id = start_from_record(record)
                    starts.setdefault(row.owner, []).append((row, lease_id))
                else:
                    tenant_id, settlement = settle_from_record(record)
                    settles.append((tenant_id or _NIL, settlement))
        async with asyncio.timeout(self._timeout * 4), self._engine.begin() as conn:
            for owner, rows in sorted(starts.items()):
                await start_leased_many(conn, owner, [r for r, _ in rows], [i for _, i in rows])
            await settle_many(conn, settles)
        for _, settlement in settles:
            self._open.discard(settlement.id)
        for path in paths:
            await asyncio.to_thread(path.unlink)
        return sum(len(rows) for rows in starts.values()) + len(settles)

    @property
    def open_requests(self) -> int:
        return len(self._open)

    async def release_orphans(self) -> int:
        """Void this process's in-flight rows that no open request owns; how many."""
        released = 0
        async with asyncio.timeout(self._timeout), self._engine.connect() as conn:
            for request_id in await own_in_flight(conn, self.owner):
                # Read the set after the rows: an id settled meanwhile is no longer in flight,
                # and `tollgate_void` touches only rows still in flight.
                if request_id not in self._open and await void(conn, request_id):
                    released += 1
        if released:
            self.orphans_released += released
            log.warning("released %d orphaned reservations (reserve timed out)", released)
        return released

    async def _drain_forever(self) -> None:
        while True:
            try:
                applied = await self.drain_spool()
                if applied:
                    log.info("drained %d spooled ledger records", applied)
                await self.release_orphans()
            except DB_ERRORS:
                pass  # still down; the records stay spooled
            except Exception:
                log.exception("spool drain failed")
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._drainer = asyncio.create_task(self._drain_forever(), name="ledger-spool-drain")

    async def flush(self) -> None:
        """Write what the batcher holds now (shutdown: before the leases are returned)."""
        await self.batcher.stop(self._timeout)

    async def stop(self) -> None:
        """Stop the drain loop and the batcher (flushing it), and drain the spool once more
        (the request pumps have been settled by the ledger's `stop` before this runs)."""
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
        await self.batcher.stop(self._timeout)
        try:
            await self.drain_spool()
        except DB_ERRORS:
            log.warning("database down at shutdown; %d records stay spooled", self.spool.pending())
        # Whatever is left of ours (journal segments the database did not take) is handed to
        # the next start or another replica.
        await asyncio.to_thread(self.spool.close)


_NIL = uuid.UUID(int=0)


def _read_all(spool: Spool, path: Path) -> list[dict[str, Any]]:
    return list(spool.records(path))
