"""K simulated server processes on one Postgres: Postgres statements per 1,000 requests/s,
per-request reservations against escrow leases with batched ledger writes.

Each "process" is an asyncio task with its own connection, its own LeaseBook and its own
heartbeat; requests arrive as fast as the processes can admit them, each one ends after a
random delay and costs a random share of its worst case. Two modes, same workload:

* `per-request`: tollgate_reserve before, tollgate_settle after (today's request path):
  2 statements per request, both on the critical path.
* `leases`: admission in memory against leases refilled ahead of need
  (tollgate_lease_refill); in-flight rows and settlements written in batches (one INSERT …
  unnest and one SELECT tollgate_settle(…) FROM unnest per flush, every FLUSH_MS or
  FLUSH_ROWS rows); idle and final returns (tollgate_lease_return).

Statements are counted by the bench itself (pg_stat_statements needs
shared_preload_libraries, which a stock server does not load). Results are Postgres work,
not gateway speed: one Python process drives all K simulated processes.

    .venv/bin/python bench/leases_bench.py [--processes 4] [--requests 20000] [--tenants 50]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.db.engine import make_engine
from api.db.migrate import upgrade
from api.ledger.functions import (
    OpenRequest,
    Settlement,
    reserve,
    settle,
    settle_many,
    start_leased_many,
)
from api.ledger.leases import LeaseBook, Subject, Ticket

SERVER = "postgresql://postgres@127.0.0.1:5432"
PERIOD = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
FLUSH_MS = 5
FLUSH_ROWS = 200
STALE_S = 30.0
WORST = Decimal("0.02")


@dataclass
class Stats:
    requests: int = 0
    statements: int = 0
    critical: int = 0  # statements a request waited for
    refused: int = 0


@dataclass
class Sim:
    owner: str
    conn: AsyncConnection
    book: LeaseBook
    stats: Stats
    starts: list[tuple[OpenRequest, uuid.UUID]] = field(default_factory=list)
    settles: list[tuple[uuid.UUID, Settlement, Ticket]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def run(self, sql: object, params: dict[str, object], critical: bool) -> object:
        async with self.lock:
            self.stats.statements += 1
            self.stats.critical += critical
            return await self.conn.execute(sql, params)  # type: ignore[arg-type]


def settlement(rid: uuid.UUID, cost: Decimal) -> Settlement:
    now = datetime.now(UTC)
    return Settlement(
        rid, "ok", "claude-haiku-4-5", 10, 10, 0, 0, 0, 0, cost, None, None, now, None, 200, None
    )


async def setup(tenants: int) -> tuple[str, list[tuple[uuid.UUID, uuid.UUID]]]:
    name = f"tollgate_bench_leases_{int(time.time())}"
    admin = await asyncpg.connect(SERVER + "/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    await asyncio.to_thread(upgrade, url)
    conn = await asyncpg.connect(f"{SERVER}/{name}")
    out = []
    for n in range(tenants):
        tid, kid = uuid.uuid4(), uuid.uuid4()
        await conn.execute(
            "INSERT INTO tenants (id, name, plan_code, monthly_budget_usd, rpm_limit,"
            " max_concurrent) VALUES ($1, $2, 'pro', 1000000, 1000000, 100000)",
            tid,
            f"t{n}",
        )
        await conn.execute(
            "INSERT INTO api_keys (id, tenant_id, key_hash, prefix, name) VALUES"
            " ($1, $2, $3, $4, 'bench')",
            kid,
            tid,
            uuid.uuid4().bytes,
            f"tg_{n}",
        )
        out.append((tid, kid))
    await conn.close()
    return url, out


async def drop(url: str) -> None:
    admin = await asyncpg.connect(SERVER + "/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await admin.close()


async def beat(sim: Sim) -> None:
    sent = time.monotonic()
    await sim.run(
        text(
            "INSERT INTO server_heartbeats (owner, last_seen) VALUES (:o, now()) "
            "ON CONFLICT (owner) DO UPDATE SET last_seen = now()"
        ),
        {"o": sim.owner},
        False,
    )
    sim.book.heartbeat_sent(sent)


async def one_request(
    sim: Sim, mode: str, tenant: uuid.UUID, key: uuid.UUID, rng: random.Random
) -> None:
    rid = uuid.uuid4()
    row = OpenRequest(
        rid,
        tenant,
        key,
        None,
        "messages",
        "claude-haiku-4-5",
        datetime.now(UTC),
        sim.owner,
        *PERIOD,
        WORST,
        WORST,
    )
    cost = (WORST * Decimal(rng.randint(10, 100)) / 100).quantize(Decimal("0.000001"))
    if mode == "per-request":
        async with sim.lock:
            sim.stats.statements += 1
            sim.stats.critical += 1
            decision = await reserve(sim.conn, row)
        if decision.outcome != "ok":
            sim.stats.refused += 1
            return
        await asyncio.sleep(rng.uniform(0.001, 0.02))
        async with sim.lock:
            sim.stats.statements += 1
            await settle(sim.conn, settlement(rid, cost))
        sim.stats.requests += 1
        return
    subject = Subject(tenant, None, *PERIOD)
    ticket = sim.book.admit(rid, subject, WORST)
    if ticket is None:
        lease = sim.book.leases.get(subject)
        rate_want = sim.book.want(subject, WORST)
        async with sim.lock:
            sim.stats.statements += 1
            sim.stats.critical += 1
            await sim.book.refill_for(
                sim.conn,
                subject,
                key=None,  # the bench's tenants have no rpm limit to speak of
                want_usd=rate_want,
                min_usd=WORST,
                want_slots=64 if lease is None or lease.slots < 64 else 16,
                min_slots=1,
                want_permits=0,
                min_rpm=1,
            )
        ticket = sim.book.admit(rid, subject, WORST)
        if ticket is None:
            sim.stats.refused += 1
            return
    sim.starts.append((row, ticket.money.id))
    await asyncio.sleep(rng.uniform(0.001, 0.02))
    sim.book.finished(ticket, cost)
    sim.settles.append((tenant, settlement(rid, cost), ticket))
    sim.stats.requests += 1


async def flusher(sim: Sim, stop: asyncio.Event) -> None:
    while not stop.is_set() or sim.starts or sim.settles:
        await asyncio.sleep(FLUSH_MS / 1000)
        starts, sim.starts = sim.starts[:FLUSH_ROWS], sim.starts[FLUSH_ROWS:]
        unstarted = {row.id for row, _ in sim.starts}  # their rows come in a later flush
        ready = [s for s in sim.settles if s[1].id not in unstarted][:FLUSH_ROWS]
        async with sim.lock:
            if starts:
                sim.stats.statements += 1
                await start_leased_many(
                    sim.conn, sim.owner, [r for r, _ in starts], [lid for _, lid in starts]
                )
            if ready:
                sim.stats.statements += 1
                await settle_many(sim.conn, [(t, s) for t, s, _ in ready])
        done = {s.id for _, s, _ in ready}
        sim.settles = [s for s in sim.settles if s[1].id not in done]
        for rid in done:
            sim.book.landed(rid)


async def process(
    engine: AsyncEngine,
    mode: str,
    n: int,
    tenants: list[tuple[uuid.UUID, uuid.UUID]],
    requests: int,
    stats: Stats,
    concurrency: int,
) -> None:
    rng = random.Random(n)
    owner = f"bench-{n}-{uuid.uuid4().hex[:4]}"
    async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        sim = Sim(owner, conn, LeaseBook(owner, STALE_S), stats)
        await beat(sim)
        stop = asyncio.Event()
        flush = asyncio.create_task(flusher(sim, stop)) if mode == "leases" else None
        sem = asyncio.Semaphore(concurrency)
        hot = tenants[: max(1, len(tenants) // 5)]

        async def run_one() -> None:
            async with sem:
                tenant, key = rng.choice(hot) if rng.random() < 0.8 else rng.choice(tenants)
                await one_request(sim, mode, tenant, key, rng)

        last_beat = time.monotonic()
        tasks = []
        for _ in range(requests):
            await sem.acquire()
            sem.release()
            tasks.append(asyncio.create_task(run_one()))
            if time.monotonic() - last_beat > STALE_S / 6:
                await beat(sim)
                last_beat = time.monotonic()
        await asyncio.gather(*tasks)
        stop.set()
        if flush is not None:
            await flush
            async with sim.lock:
                for lease in [*sim.book.retired, *sim.book.leases.values()]:
                    sim.stats.statements += 1
                    await sim.book.give_back(conn, lease)


async def bench(
    mode: str, processes: int, requests: int, tenants: int, concurrency: int
) -> dict[str, float]:
    url, made = await setup(tenants)
    engine = make_engine(url, pool_size=processes + 1)
    stats = Stats()
    try:
        started = time.monotonic()
        await asyncio.gather(
            *(
                process(engine, mode, n, made, requests // processes, stats, concurrency)
                for n in range(processes)
            )
        )
        elapsed = time.monotonic() - started
        async with engine.connect() as conn:
            left = (
                await conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE status='in_flight'), count(*),"
                        " (SELECT coalesce(sum(reserved_usd),0) FROM spend_counters),"
                        " (SELECT count(*) FROM budget_leases) FROM usage_ledger"
                    )
                )
            ).one()
    finally:
        await engine.dispose()
        await drop(url)
    assert left[0] == 0 and left[1] == stats.requests and left[2] == 0 and left[3] == 0, left
    return {
        "requests": stats.requests,
        "refused": stats.refused,
        "seconds": round(elapsed, 2),
        "req_per_s": round(stats.requests / elapsed, 1),
        "statements": stats.statements,
        "statements_per_s": round(stats.statements / elapsed, 1),
        "statements_per_1000_req_s": round(1000 * stats.statements / stats.requests, 1),
        "critical_per_request": round(stats.critical / stats.requests, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=64, help="per process")
    args = parser.parse_args()
    for mode in ("per-request", "leases"):
        result = asyncio.run(
            bench(mode, args.processes, args.requests, args.tenants, args.concurrency)
        )
        print(
            f"{mode:12s} K={args.processes} " + " ".join(f"{k}={v}" for k, v in result.items()),
            flush=True,
        )


if __name__ == "__main__":
    main()
