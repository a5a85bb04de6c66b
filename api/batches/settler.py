"""The background settler: every replica runs one, a Postgres advisory lock lets one act at a
time. Each run polls the upstream for the batches not yet settled and settles those that ended
(also ones that expired or whose results nobody fetched); `kick()` (a tenant asking for results)
starts a run at once. Submissions left half-done by a crash (reserved, never confirmed by the
upstream) are released after `STALE_SUBMISSION_S`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.batches import repository
from api.batches.settle import settle_batch
from api.passthrough import Refused, read_json
from api.pricing.live import LiveBook
from api.upstream_client import UpstreamClient

log = logging.getLogger(__name__)

SETTLER_LOCK = 0x70_11_BA_7C  # pg advisory lock key: "tollgate batch settler"
STALE_SUBMISSION_S = 15 * 60  # longer than any upstream call may take
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:key)")


class BatchSettler:
    def __init__(
        self,
        engine: AsyncEngine,
        upstream: UpstreamClient,
        prices: LiveBook,
        interval_s: float,
    ) -> None:
        self._engine = engine
        self._upstream = upstream
        self._prices = prices
        self._interval = interval_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        """Run soon (a tenant is fetching results)."""
        self._wake.set()

    async def run_once(self) -> int:
        """Settle what has ended; returns rows written, or 0 if another replica is at it."""
        async with self._engine.connect() as lock:
            if not (await lock.execute(_TRY_LOCK, {"key": SETTLER_LOCK})).scalar_one():
                await lock.rollback()
                return 0
            await lock.commit()
            try:
                return await self._settle_all()
            finally:
                await lock.execute(_UNLOCK, {"key": SETTLER_LOCK})
                await lock.commit()

    async def _settle_all(self) -> int:
        async with self._engine.connect() as conn:
            stale = await repository.stale_submissions(conn, STALE_SUBMISSION_S)
            batches = await repository.unsettled(conn)
        for batch_id in stale:
            await repository.release(self._engine, batch_id, "failed")
        written = 0
        for batch in batches:
            assert batch.upstream_id is not None
            path = f"/v1/messages/batches/{batch.upstream_id}"
            found = await read_json(self._upstream, "GET", path, headers={})
            gone = isinstance(found, Refused) and found.status == 404
            if gone or (isinstance(found, dict) and found.get("processing_status") == "ended"):
                book = self._prices.book
                written += await settle_batch(self._engine, self._upstream, book, batch)
        return written

    async def _run(self) -> None:
        while True:
            try:
                written = await self.run_once()
                if written:
                    log.info("settled %d batch results", written)
            except Exception:
                log.exception("batch settlement failed; retrying on the next run")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="batch-settler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
