"""Ledger writes off the request path: lease-admitted start rows and every settlement are
journaled locally (api/ledger/spool.py: one `os.write` each, before the request goes upstream
for a start) and reach Postgres in batches, every `flush_s` or every `max_rows` rows, in one
transaction: the starts first (one INSERT … ON CONFLICT DO NOTHING), then the settlements (one
statement, sorted by tenant so two processes flushing at once take the counter row locks in one
order). The journal segments are fsynced once per flush, while the statement runs.

A flush the database refuses (down, busy, timed out) stays queued and is retried; nothing
admitted is refused or dropped for it, and the journal holds every record until it lands. Once
a flush lands, the listeners hear which starts and settlements are in Postgres (the writer's
open set, the lease book)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.errors import DB_ERRORS
from api.ledger.functions import OpenRequest, Settlement, settle_many, start_leased_many
from api.ledger.spool import Spool

log = logging.getLogger(__name__)

Landed = Callable[[list[uuid.UUID], list[uuid.UUID]], None]
"""Told (start ids, settlement ids) after a flush landed."""


@dataclass(frozen=True)
class _Start:
    row: OpenRequest
    lease_id: uuid.UUID
    segment: int


@dataclass(frozen=True)
class _Settle:
    tenant_id: uuid.UUID | None
    settlement: Settlement
    segment: int


class LedgerBatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        journal: Spool,
        *,
        flush_s: float = 0.005,
        max_rows: int = 500,
        timeout_s: float = 30.0,
        retry_s: float = 0.5,
    ) -> None:
        self._engine = engine
        self.journal = journal
        self.owner = journal.owner
        self.flush_s = flush_s
        self.max_rows = max_rows
        self._timeout = timeout_s
        self._retry = retry_s
        self._starts: list[_Start] = []
        self._settles: list[_Settle] = []
        self._listeners: list[Landed] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.flushes = 0
        self.rows_flushed = 0
        self.failed_flushes = 0

    def on_landed(self, listener: Landed) -> None:
        self._listeners.append(listener)

    @property
    def queued(self) -> int:
        return len(self._starts) + len(self._settles)

    def start_row(self, row: OpenRequest, lease_id: uuid.UUID) -> None:
        """Journal the in-flight row of a lease-admitted request and queue it (call before the
        request goes upstream)."""
        segment = self.journal.journal(start_record(row, lease_id))
        self._starts.append(_Start(row, lease_id, segment))
        self._kick()

    def settle(self, tenant_id: uuid.UUID | None, settlement: Settlement) -> None:
        """Journal a settlement and queue it."""
        record = settlement.to_json()
        record["kind"] = "settle"
        record["tenant_id"] = str(tenant_id) if tenant_id is not None else None
        segment = self.journal.journal(record)
        self._settles.append(_Settle(tenant_id, settlement, segment))
        self._kick()

    def _kick(self) -> None:
        if self._stopping:
            return
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="ledger-batcher")
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        wake = self._wake
        while True:
            await wake.wait()
            wake.clear()
            if not self.queued:
                continue
            if self.queued < self.max_rows and self.flush_s > 0:
                await asyncio.sleep(self.flush_s)  # let the batch fill for one interval
            try:
                await self.flush()
            except (IntegrityError, DataError, ProgrammingError) as exc:
                # Not the database being down or busy: a row it will never take. Find it (and
                # set it aside) rather than retrying the whole batch forever.
                self.failed_flushes += 1
                log.error("ledger batch refused (%s); writing its rows one by one", exc)
                try:
                    await self._isolate()
                except Exception:
                    log.exception("ledger rows could not be written one by one; retrying")
                    await asyncio.sleep(self._retry)
            except DB_ERRORS as exc:
                self.failed_flushes += 1
                log.warning(
                    "ledger flush failed (%s: %s); %d records stay journaled and queued",
                    type(exc).__name__,
                    str(exc).splitlines()[0][:300] if str(exc) else "",
                    self.queued,
                )
                await asyncio.sleep(self._retry)
            except Exception:
                self.failed_flushes += 1
                log.exception("ledger flush failed")
                await asyncio.sleep(self._retry)
            if self.queued:
                wake.set()

    async def flush(self) -> int:
        """Write one batch (at most `max_rows`): starts, then settlements whose starts are in
        Postgres or in this batch. Raises DB_ERRORS with the batch still queued."""
        starts = self._starts[: self.max_rows]
        settles: list[_Settle] = []
        if len(starts) == len(self._starts):  # every queued start goes in this batch
            settles = self._settles[: max(self.max_rows - len(starts), 1)]
        if not starts and not settles:
            return 0
        sync = asyncio.create_task(asyncio.to_thread(self.journal.sync))
        try:
            async with asyncio.timeout(self._timeout), self._engine.begin() as conn:
                await start_leased_many(
                    conn, self.owner, [s.row for s in starts], [s.lease_id for s in starts]
                )
                await settle_many(conn, [(s.tenant_id or _NIL, s.settlement) for s in settles])
        finally:
            await sync
        del self._starts[: len(starts)]
        del self._settles[: len(settles)]
        self.flushes += 1
        self.rows_flushed += len(starts) + len(settles)
        self.journal.landed([s.segment for s in starts] + [s.segment for s in settles])
        start_ids = [s.row.id for s in starts]
        settle_ids = [s.settlement.id for s in settles]
        for listener in self._listeners:
            listener(start_ids, settle_ids)
        return len(starts) + len(settles)

    async def _isolate(self) -> None:
        """Write the head of the queue one row at a time; a row Postgres refuses on its own is
        taken out of the queue and kept in a dead-letter file (`OWNER.deadletter` in the
        journal's directory, never replayed automatically) for an operator."""
        starts, settles = list(self._starts[: self.max_rows]), list(self._settles[: self.max_rows])
        items: list[_Start | _Settle] = [*starts, *settles]
        for item in items:
            try:
                async with asyncio.timeout(self._timeout), self._engine.begin() as conn:
                    if isinstance(item, _Start):
                        await start_leased_many(conn, self.owner, [item.row], [item.lease_id])
                    else:
                        await settle_many(conn, [(item.tenant_id or _NIL, item.settlement)])
            except (IntegrityError, DataError, ProgrammingError) as exc:
                record = (
                    start_record(item.row, item.lease_id)
                    if isinstance(item, _Start)
                    else {**item.settlement.to_json(), "kind": "settle"}
                )
                record["error"] = str(exc).splitlines()[0][:500]
                await asyncio.to_thread(self.journal.dead_letter, record)
                log.error("ledger row set aside in the dead-letter file: %s", record["id"])
        # Whatever was written or set aside is out of the queue (a row written alone and
        # then written again by the next batch is harmless: both writes are idempotent).
        done = {id(x) for x in items}
        self._starts = [x for x in self._starts if id(x) not in done]
        self._settles = [x for x in self._settles if id(x) not in done]
        self.journal.landed([x.segment for x in items])
        start_ids = [x.row.id for x in starts]
        settle_ids = [x.settlement.id for x in settles]
        for listener in self._listeners:
            listener(start_ids, settle_ids)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Flush what is queued (graceful shutdown); what the database does not take within
        `timeout_s` stays in the journal for the next start or another replica."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            async with asyncio.timeout(timeout_s):
                while self.queued:
                    await self.flush()
        except (TimeoutError, *DB_ERRORS) as exc:  # type: ignore[misc]
            log.warning(
                "database did not take the last ledger batch (%s); %d records stay journaled",
                type(exc).__name__,
                self.queued,
            )
        await asyncio.to_thread(self.journal.close_journal)


_NIL = uuid.UUID(int=0)


def start_record(row: OpenRequest, lease_id: uuid.UUID) -> dict[str, Any]:
    """The journal line of a lease-admitted start."""
    out: dict[str, Any] = {"kind": "start", "lease_id": str(lease_id)}
    for f in fields(row):
        value = getattr(row, f.name)
        if isinstance(value, uuid.UUID | Decimal):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[f.name] = value
    return out


def start_from_record(raw: dict[str, Any]) -> tuple[OpenRequest, uuid.UUID]:
    def uid(name: str) -> uuid.UUID | None:
        value = raw.get(name)
        return uuid.UUID(value) if value is not None else None

    row = OpenRequest(
        id=uuid.UUID(raw["id"]),
        tenant_id=uuid.UUID(raw["tenant_id"]),
        api_key_id=uuid.UUID(raw["api_key_id"]),
        end_user_id=uid("end_user_id"),
        endpoint=raw["endpoint"],
        model=raw["model"],
        started_at=datetime.fromisoformat(raw["started_at"]),
        owner=raw["owner"],
        period_start=datetime.fromisoformat(raw["period_start"]),
        period_end=datetime.fromisoformat(raw["period_end"]),
        hard_usd=Decimal(raw["hard_usd"]),
        soft_usd=Decimal(raw["soft_usd"]),
    )
    return row, uuid.UUID(raw["lease_id"])


def settle_from_record(raw: dict[str, Any]) -> tuple[uuid.UUID | None, Settlement]:
    tenant = raw.get("tenant_id")
    return (uuid.UUID(tenant) if tenant else None), Settlement.from_json(raw)
