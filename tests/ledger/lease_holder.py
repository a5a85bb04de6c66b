"""A server process reduced to what matters for the kill -9 test: it heartbeats, takes a lease
on a tenant's budget and slots, says `ready`, and keeps heartbeating until it is killed.

    python -m tests.ledger.lease_holder DATABASE_URL TENANT_ID STALE_S"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from decimal import Decimal

from sqlalchemy import text

from api.db.engine import make_engine, to_asyncpg_url
from api.ledger.leases import LeaseBook, Subject
from tests.ledger.lease_model import PERIOD

_BEAT = text(
    "INSERT INTO server_heartbeats (owner, last_seen) VALUES (:owner, now()) "
    "ON CONFLICT (owner) DO UPDATE SET last_seen = now()"
)


async def main(url: str, tenant: uuid.UUID, stale_s: float) -> None:
    engine = make_engine(to_asyncpg_url(url), pool_size=1)
    owner = f"holder-{uuid.uuid4().hex[:6]}"
    book = LeaseBook(owner, stale_s)
    async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        sent = time.monotonic()
        await conn.execute(_BEAT, {"owner": owner})
        book.heartbeat_sent(sent)
        refill = await book.refill_for(
            conn,
            Subject(tenant, None, *PERIOD),
            key=None,
            want_usd=Decimal(1000),
            min_usd=Decimal(0),
            want_slots=1000,
            min_slots=1,
            want_permits=0,
            min_rpm=1,
        )
        assert refill is not None
        print(f"ready {owner} {refill.usd} {refill.slots}", flush=True)
        while True:
            await asyncio.sleep(stale_s / 4)
            await conn.execute(_BEAT, {"owner": owner})


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], uuid.UUID(sys.argv[2]), float(sys.argv[3])))
