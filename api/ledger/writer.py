"""The ledger writer: opens in-flight rows (failing closed when the database is down) and
settles them, falling back to the durable spool when the database cannot take a settlement.
A background loop drains the spool whenever the database answers again."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.errors import DB_ERRORS, DatabaseDown
from api.ledger.functions import OpenRequest, Reservation, Settlement, reserve, settle
from api.ledger.spool import Spool

log = logging.getLogger(__name__)


class LedgerWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        spool: Spool,
        *,
        statement_timeout_s: float = 3.0,
        drain_interval_s: float = 2.0,
    ) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.spool = spool
        self.owner = spool.owner
        self._timeout = statement_timeout_s
        self._interval = drain_interval_s
        self._drainer: asyncio.Task[None] | None = None

    async def open(self, row: OpenRequest) -> Reservation:
        """Reserve and write the in-flight row (if every limit allows); a database that does
        not answer means 503, and nothing is spent."""
        try:
            async with asyncio.timeout(self._timeout), self._engine.connect() as conn:
                return await reserve(conn, row)
        except DB_ERRORS:
            log.warning("ledger unavailable; refusing request", extra={"request_id": str(row.id)})
            raise DatabaseDown from None

    async def settle(self, settlement: Settlement) -> None:
        """Make the row final, or spool it durably. Never raises for database trouble."""
        try:
            async with asyncio.timeout(self._timeout), self._engine.connect() as conn:
                await settle(conn, settlement)
            return
        except DB_ERRORS as exc:
            log.warning(
                "ledger write failed (%s); spooling",
                type(exc).__name__,
                extra={"request_id": str(settlement.id)},
            )
        await asyncio.to_thread(self.spool.append, settlement.to_json())

    async def drain_spool(self) -> int:
        """Replay spooled settlements; returns how many were applied or found already applied."""
        done = 0
        for path in await asyncio.to_thread(self.spool.claim):
            records = await asyncio.to_thread(_read_all, self.spool, path)
            async with asyncio.timeout(self._timeout * 4), self._engine.connect() as conn:
                for record in records:
                    await settle(conn, Settlement.from_json(record))
                    done += 1
            await asyncio.to_thread(path.unlink)
        return done

    async def _drain_forever(self) -> None:
        while True:
            try:
                applied = await self.drain_spool()
                if applied:
                    log.info("drained %d spooled ledger records", applied)
            except DB_ERRORS:
                pass  # still down; the records stay spooled
            except Exception:
                log.exception("spool drain failed")
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._drainer = asyncio.create_task(self._drain_forever(), name="ledger-spool-drain")

    async def stop(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
        try:
            await self.drain_spool()
        except DB_ERRORS:
            await asyncio.to_thread(self.spool.close)
            log.warning("database down at shutdown; %d records stay spooled", self.spool.pending())


def _read_all(spool: Spool, path: Path) -> list[dict[str, Any]]:
    return list(spool.records(path))
