"""Requests per minute for calls that are not metered in the ledger (count_tokens): the same
per-key sliding window as `tollgate_reserve`, in the same `rate_windows` rows, so they share
the key's budget of requests. One transaction, serialised per key by an advisory lock."""

from __future__ import annotations

import math
import uuid

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.errors import DB_ERRORS, DatabaseDown
from api.quotas.errors import RateLimited

_TAKE = text(
    """
    WITH clock AS (
        SELECT date_trunc('minute', now()) AS win,
               extract(epoch FROM now() - date_trunc('minute', now())) AS into_minute
    ), used AS (
        SELECT COALESCE(sum(w.count) FILTER (WHERE w.window_start = c.win), 0) AS cur,
               COALESCE(sum(w.count) FILTER (
                   WHERE w.window_start = c.win - interval '1 minute'), 0) AS prev
        FROM rate_windows w, clock c
        WHERE w.api_key_id = :key_id AND w.window_start >= c.win - interval '1 minute'
    )
    SELECT COALESCE(t.rpm_limit, p.rpm_limit) AS rpm, used.cur, used.prev, clock.into_minute,
           used.cur + used.prev * (60 - clock.into_minute) / 60 AS weighted
    FROM tenants t JOIN plans p ON p.code = t.plan_code, used, clock
    WHERE t.id = :tenant_id
    """
)
_COUNT = text(
    """
    INSERT INTO rate_windows AS w (api_key_id, window_start, count)
    VALUES (:key_id, date_trunc('minute', now()), 1)
    ON CONFLICT (api_key_id, window_start) DO UPDATE SET count = w.count + 1
    """
)


async def take_request(engine: AsyncEngine, tenant_id: uuid.UUID, key_id: uuid.UUID) -> None:
    """Count one request against the key's rpm, or raise 429 with retry-after."""
    params = {"tenant_id": tenant_id, "key_id": key_id}
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:lock))"), {"lock": str(key_id)}
            )
            row = (await conn.execute(_TAKE, params)).mappings().first()
            if row is None:
                return  # the tenant is gone; authentication will say so next time
            if row["weighted"] + 1 > row["rpm"]:
                raise RateLimited(
                    f"rate limit of {row['rpm']} requests per minute reached",
                    headers={"retry-after": str(_retry_after(row))},
                )
            await conn.execute(_COUNT, params)
    except DB_ERRORS:
        raise DatabaseDown from None


def _retry_after(row: RowMapping) -> int:
    rpm, cur, prev = int(row["rpm"]), int(row["cur"]), int(row["prev"])
    if cur + 1 > rpm:
        return max(1, math.ceil(60 - float(row["into_minute"])))
    extra = float(row["weighted"]) + 1 - rpm
    return max(1, math.ceil(60 * extra / max(prev, 1)))
