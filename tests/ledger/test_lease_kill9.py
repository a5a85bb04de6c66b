"""Kill -9 a process that holds a lease: the survivor spends what is left outside it at once,
the rest once the reaper returns the dead process's lease (after its heartbeat went stale), and
never a cent more than the budget."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from api.ledger.functions import settle
from api.ledger.reaper import Reaper
from tests.ledger.lease_model import Process, Running, settlement
from tests.pg import asyncpg_dsn
from tests.quotas.conftest import set_limits
from tests.support import make_tenant_key

BUDGET = Decimal("1.00")
STALE_S = 2.0


async def test_survivor_spends_the_whole_remaining_budget_and_never_more(
    database_url: str, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tk = await make_tenant_key(sessions)
    await set_limits(engine, tk.tenant_id, budget=BUDGET, concurrency=4)
    survivor = Process.start("survivor")
    survivor.book.stale_s = STALE_S
    auto = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with auto.connect() as conn:
        await survivor.heartbeat(conn)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.ledger.lease_holder",
            asyncpg_dsn(database_url),
            str(tk.tenant_id),
            str(STALE_S),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )

    async def beating() -> None:  # the survivor stays live while the holder starts (slowly,
        # on a busy machine): the holder's grant is half only if both heartbeats are fresh
        async with auto.connect() as beat_conn:
            while True:
                await beat_conn.execute(
                    text("UPDATE server_heartbeats SET last_seen = now() WHERE owner = :o"),
                    {"o": survivor.owner},
                )
                await asyncio.sleep(STALE_S / 4)

    beats = asyncio.create_task(beating())
    try:
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 60)  # type: ignore[union-attr]
        beats.cancel()
        await asyncio.gather(beats, return_exceptions=True)
        assert line.startswith("ready"), line
        held = Decimal(line.split()[2])
        assert held == BUDGET / 2  # half: two live processes, anti-stranding
    finally:
        holder.kill()  # SIGKILL: no return, no goodbye
        holder.wait()

    reaper = Reaper(engine, survivor.owner, STALE_S)
    spent = Decimal(0)
    refused_before_reap = 0
    deadline = time.monotonic() + 120
    async with auto.connect() as conn:
        while spent < BUDGET and time.monotonic() < deadline:
            survivor.clock.now = time.monotonic()
            await survivor.heartbeat(conn)
            outcome = await survivor.admit_worst(conn, tk.tenant_id, tk.key_id, Decimal("0.05"))
            if outcome in ("leased", "ok"):
                run = survivor.running.pop()
                await _settle_full(conn, survivor, run)
                spent += run.worst_case
            else:
                refused_before_reap += 1
                await reaper.reap_once()
                await asyncio.sleep(0.1)  # real time must pass for the heartbeat to go stale
            counters = (
                await conn.execute(
                    text(
                        "SELECT spent_usd + reserved_usd FROM spend_counters "
                        "WHERE tenant_id = :t AND end_user_id IS NULL"
                    ),
                    {"t": tk.tenant_id},
                )
            ).scalar_one()
            assert counters <= BUDGET
        assert spent == BUDGET  # the whole budget, including what the dead process held
        assert refused_before_reap > 0  # ... some of it only after the reaper returned its lease
        # Nothing more is admitted, and the refusal is the budget's. The survivor first gives
        # back its own leases: its refills may by now hold every concurrency slot, and a
        # per-request reserve checks concurrency before the budget (once seen on a busy run).
        await survivor.book.return_all(conn)
        again = await survivor.admit_worst(
            conn, tk.tenant_id, tk.key_id, Decimal("0.01"), refill=False
        )
        assert again == "budget"
        left = (
            await conn.execute(
                text("SELECT count(*) FROM budget_leases WHERE owner LIKE 'holder-%'")
            )
        ).scalar_one()
    assert left == 0


async def _settle_full(conn: AsyncConnection, survivor: Process, run: Running) -> None:
    if run.ticket is not None:
        survivor.book.finished(run.ticket, run.worst_case)
    await settle(conn, settlement(run.request_id, run.worst_case))
    survivor.book.landed(run.request_id)
