"""The price book each server process prices with: loaded from Postgres at start-up, then
kept current by a background task that asks every REFRESH_S seconds for the book's change
marker (one index-only `max(id), count(*)`) and reloads only when it moved. No request ever
waits on the database for a price; a change made on any replica is used everywhere within
REFRESH_S plus one reload. If the database is unreachable the last book stays in use."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from api.pricing import repository
from api.pricing.book import PriceBook, parse_file, shipped_book, shipped_text
from api.pricing.service import ImportReport, import_prices

log = logging.getLogger(__name__)

REFRESH_S = 1.0
_DB_ERRORS = (Exception,)  # whatever failed, keep the last book


class LiveBook:
    def __init__(self, engine: AsyncEngine, *, refresh_s: float = REFRESH_S) -> None:
        self._engine = engine
        self._refresh_s = refresh_s
        self.book = PriceBook([])
        self._task: asyncio.Task[None] | None = None
        self._seeded = False

    async def seed(self) -> ImportReport:
        """Import the shipped price file (idempotent: existing versions are left alone)."""
        report = await import_prices(self._engine, parse_file(shipped_text(), "prices.json"))
        if report.added:
            log.info("price book: %d versions added from the shipped file", len(report.added))
        for conflict in report.conflicts:
            log.warning("price book: shipped version not imported: %s", conflict)
        return report

    async def refresh(self) -> bool:
        """Reload if the book changed in the database; True when a new book was swapped in."""
        async with self._engine.connect() as conn:
            marker = await repository.marker(conn)
            if marker == self.book.marker:
                return False
            prices = await repository.load_all(conn)
        self.book = PriceBook(prices, marker)
        log.info("price book loaded: %d versions (newest id %d)", marker[1], marker[0])
        return True

    async def start(self, *, seed: bool = True) -> None:
        """Seed and load; with the database down, price from the shipped file (every request
        fails closed anyway until the database answers) and keep trying in the background."""
        self._seeded = not seed
        try:
            await self._catch_up()
        except _DB_ERRORS as exc:
            log.warning("price book: database unavailable (%s); using the shipped file", exc)
            self.book = PriceBook(shipped_book().versions(), (-1, -1))
        self._task = asyncio.create_task(self._poll(), name="price-book-refresh")

    async def _catch_up(self) -> None:
        if not self._seeded:
            await self.seed()
            self._seeded = True
        await self.refresh()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                async with asyncio.timeout(max(self._refresh_s * 3, 3.0)):
                    await self._catch_up()
            except asyncio.CancelledError:
                raise
            except _DB_ERRORS as exc:  # keep pricing with the last book
                log.warning("price book refresh failed: %s", type(exc).__name__)
