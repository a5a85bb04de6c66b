"""The background sender of budget alerts. Every second it claims due undelivered events
(`FOR UPDATE … SKIP LOCKED`, so one replica delivers each event at a time) and POSTs each to its
tenant's URL, signed. A 2xx marks it delivered; anything else (a status, a timeout, a refused
connection) is recorded and retried with exponential backoff (1 s, 2 s, 4 s, … up to an hour),
forever, with the same event id and body. The queue is a table, so it survives restarts."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.alerts.signing import HEADER, encode, signature
from api.db.errors import DB_ERRORS
from api.money import format_usd

log = logging.getLogger(__name__)

BATCH = 20
MAX_BACKOFF_S = 3600.0
_CLAIM = text(
    """
    SELECT e.id, e.tenant_id, u.external_id AS user, e.threshold_pct, e.period_start,
           e.period_end, e.limit_usd, e.spent_usd, e.created_at, e.attempts, s.url, s.secret
    FROM alert_events e
    JOIN alert_settings s ON s.tenant_id = e.tenant_id
    LEFT JOIN end_users u ON u.id = e.end_user_id
    WHERE e.delivered_at IS NULL AND e.next_attempt_at <= now()
    ORDER BY e.next_attempt_at
    LIMIT :batch
    FOR UPDATE OF e SKIP LOCKED
    """
)
_RESULT = text(
    """
    UPDATE alert_events
       SET attempts = attempts + 1, last_status = :status, last_error = :error,
           last_attempt_at = now(), delivered_at = CASE WHEN :ok THEN now() END,
           next_attempt_at = now() + make_interval(secs => :backoff)
     WHERE id = :id
    """
)


def _iso(value: Any) -> str:
    return str(value.isoformat()).replace("+00:00", "Z")


def event_body(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "type": "budget.threshold",
        "tenant_id": str(row.tenant_id),
        "user": row.user,
        "threshold_pct": row.threshold_pct,
        "period_start": _iso(row.period_start),
        "period_end": _iso(row.period_end),
        "limit_usd": format_usd(row.limit_usd),
        "spent_usd": format_usd(row.spent_usd),
        "created_at": _iso(row.created_at),
    }


class AlertSender:
    def __init__(
        self, engine: AsyncEngine, interval_s: float = 1.0, base_backoff_s: float = 1.0
    ) -> None:
        self._engine = engine
        self._interval = interval_s
        self._base = base_backoff_s
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
        self._task: asyncio.Task[None] | None = None

    async def _post(self, row: Any) -> tuple[int | None, str | None]:
        body = encode(event_body(row))
        headers = {
            "content-type": "application/json",
            HEADER: signature(row.secret, int(time.time()), body),
        }
        try:
            response = await self._http.post(row.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        error = None if response.is_success else f"HTTP {response.status_code}"
        return response.status_code, error

    async def _deliver(self, conn: AsyncConnection, row: Any) -> None:
        status, error = await self._post(row)
        ok = error is None
        backoff = min(self._base * 2 ** int(row.attempts), MAX_BACKOFF_S)
        params = {"id": row.id, "status": status, "error": error, "ok": ok, "backoff": backoff}
        await conn.execute(_RESULT, params)
        if not ok:
            log.warning("alert %s not delivered (%s); retrying in %gs", row.id, error, backoff)

    async def run_once(self) -> int:
        """Deliver what is due now; how many events were attempted."""
        async with self._engine.begin() as conn:
            rows = (await conn.execute(_CLAIM, {"batch": BATCH})).all()
            for row in rows:
                await self._deliver(conn, row)
        return len(rows)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except DB_ERRORS:
                pass  # the database is down or busy; the events wait in their table
            except Exception:
                log.exception("alert sender failed")
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._http.aclose()
