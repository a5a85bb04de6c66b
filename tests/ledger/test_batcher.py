"""The ledger batcher: lease-admitted starts and settlements reach Postgres in one batch, and
a row Postgres will never take (here: a start whose key does not exist) is set aside in the
dead-letter file instead of blocking every batch behind it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.ledger.batcher import LedgerBatcher
from api.ledger.functions import OpenRequest, Settlement
from api.ledger.spool import Spool
from api.quotas.periods import calendar_month
from tests.support import ledger_rows, make_tenant_key, wait_until


def start(tenant: uuid.UUID, key: uuid.UUID) -> OpenRequest:
    now = datetime.now(UTC)
    period_start, period_end = calendar_month(now)
    return OpenRequest(
        id=uuid.uuid4(),
        tenant_id=tenant,
        api_key_id=key,
        end_user_id=None,
        endpoint="messages",
        model="claude-sonnet-4-6",
        started_at=now,
        owner="batcher-test",
        period_start=period_start,
        period_end=period_end,
        hard_usd=Decimal("0.01"),
        soft_usd=Decimal("0.01"),
    )


def settled(request_id: uuid.UUID) -> Settlement:
    return Settlement(
        id=request_id,
        status="ok",
        model="claude-sonnet-4-6",
        input_tokens=3,
        output_tokens=4,
        cache_write_5m_tokens=0,
        cache_write_1h_tokens=0,
        cache_read_tokens=0,
        web_search_requests=0,
        cost_usd=Decimal("0.0001"),
        price_version=None,
        first_token_at=None,
        ended_at=datetime.now(UTC),
        upstream_request_id=None,
        http_status=200,
        error_type=None,
    )


async def test_a_row_postgres_refuses_is_set_aside_and_the_rest_lands(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    tk = await make_tenant_key(sessions)
    spool = Spool(tmp_path / "spool", "batcher-test")
    batcher = LedgerBatcher(engine, spool, flush_s=0.001)
    landed: list[uuid.UUID] = []
    batcher.on_landed(lambda starts, settles: landed.extend(settles))
    good, bad = start(tk.tenant_id, tk.key_id), start(tk.tenant_id, uuid.uuid4())
    lease = uuid.uuid4()
    for row in (good, bad):
        batcher.start_row(row, lease)
    batcher.settle(tk.tenant_id, settled(good.id))
    batcher.settle(tk.tenant_id, settled(bad.id))

    async def drained() -> bool:
        return batcher.queued == 0

    await wait_until(drained, timeout_s=60)
    await batcher.stop()
    rows = await ledger_rows(engine)
    assert [(r["id"], r["status"]) for r in rows] == [(good.id, "ok")]
    dead = [json.loads(line) for line in (spool.directory / "batcher-test.deadletter").open()]
    assert [(d["kind"], d["id"]) for d in dead] == [("start", str(bad.id))]
    assert sorted(landed) == sorted([good.id, bad.id])  # the bad settle found no row: a no-op
    assert spool.journaled == 0 and not list(spool.directory.glob("*.journal"))
