"""`last_used_at` without a write per request: each process notes the keys it accepted in memory
and writes them every few seconds in one statement (and once more at shutdown). The column may
lag by that interval; it never goes backwards (GREATEST), whichever process writes last."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.errors import DB_ERRORS

log = logging.getLogger(__name__)

_FLUSH = text(
    """
    UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at)
    FROM unnest(CAST(:ids AS uuid[]), CAST(:ats AS timestamptz[])) AS u(id, at)
    WHERE k.id = u.id
    """
)


class KeyUsage:
    def __init__(self, engine: AsyncEngine, interval_s: float = 5.0) -> None:
        self._engine = engine
        self._interval = interval_s
        self._seen: dict[uuid.UUID, datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def touch(self, key_id: uuid.UUID) -> None:
        self._seen[key_id] = datetime.now(UTC)

    async def flush(self) -> int:
        """Write what was noted since the last flush; how many keys. Kept for the next flush
        when the database cannot take it."""
        if not self._seen:
            return 0
        batch, self._seen = self._seen, {}
        try:
            async with self._engine.begin() as conn:
                await conn.execute(_FLUSH, {"ids": list(batch), "ats": list(batch.values())})
        except DB_ERRORS:
            for key_id, at in batch.items():  # newer notes win
                self._seen.setdefault(key_id, at)
            raise
        return len(batch)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except DB_ERRORS:
                pass  # kept; the next round tries again
            except Exception:
                log.exception("last_used_at flush failed")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="key-last-used")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        with contextlib.suppress(*DB_ERRORS):
            await self.flush()
