"""The escrow-lease invariant, model-based: random interleavings of admit (against a lease —
budget, a slot and an rpm permit — refilling, or per request), finish, landing of
settlements, lease return, local expiry, crash, reaping and restart across simulated
processes, all against the real Postgres functions; after every step, in hard mode:

    settled spend + per-request reservations + leased escrow <= limit   (tenant and end user)
    in-flight requests + leased slots <= max_concurrent
    no minute counts more than rpm, and nothing is admitted that no minute counted
    counters == what the ledger rows and the lease rows add up to
    every live process's lease covers its requests in flight and its unlanded costs

and, when the walk ends and everything has settled and been returned, nothing is left
reserved or leased."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from api.ledger.reaper import Reaper
from tests.ledger.lease_model import STALE_S, Process
from tests.quotas.conftest import set_limits
from tests.support import make_tenant_key

BUDGET = Decimal("2.00")
USER_BUDGET = Decimal("0.40")
CONCURRENCY = 10
RPM = 100
STEPS = 260

_COUNTERS = text(
    "SELECT end_user_id, spent_usd, reserved_usd, in_flight FROM spend_counters "
    "WHERE tenant_id = :t"
)
_ROWS = text(
    """
    SELECT l.end_user_id,
           COALESCE(sum(l.reserved_usd) FILTER (WHERE l.status = 'in_flight'
                                                AND l.lease_id IS NULL), 0) AS reserved,
           count(*) FILTER (WHERE l.status = 'in_flight' AND l.lease_id IS NULL) AS running,
           COALESCE(sum(l.cost_usd) FILTER (WHERE l.status <> 'in_flight'), 0) AS spent
      FROM usage_ledger l WHERE l.tenant_id = :t GROUP BY l.end_user_id
    """
)
_LEASES = text("SELECT id, end_user_id, amount_usd, slots FROM budget_leases WHERE tenant_id = :t")


_gone: list[int] = []  # admissions of crashed processes (reset by each test)


async def check(
    conn: AsyncConnection, tenant: uuid.UUID, limited_user: uuid.UUID, processes: list[Process]
) -> None:
    counters = {r[0]: r[1:] for r in (await conn.execute(_COUNTERS, {"t": tenant})).all()}
    rows = {r[0]: r[1:] for r in (await conn.execute(_ROWS, {"t": tenant})).all()}
    leases = (await conn.execute(_LEASES, {"t": tenant})).all()
    spent, reserved, in_flight = counters.get(None, (0, 0, 0))
    assert spent + reserved <= BUDGET
    assert in_flight <= CONCURRENCY
    assert reserved == sum(r[0] for r in rows.values()) + sum(lease[2] for lease in leases)
    assert in_flight == sum(r[1] for r in rows.values()) + sum(lease[3] for lease in leases)
    assert spent == sum(r[2] for r in rows.values())
    if limited_user in counters:
        u_spent, u_reserved, _ = counters[limited_user]
        assert u_spent + u_reserved <= USER_BUDGET
        u_leases = sum(lease[2] for lease in leases if lease[1] == limited_user)
        assert u_reserved == rows.get(limited_user, (0, 0, 0))[0] + u_leases
    windows = [r[0] for r in (await conn.execute(text("SELECT count FROM rate_windows"))).all()]
    assert all(count <= RPM for count in windows)  # no minute ever counts more than rpm
    admitted = sum(p.admitted for p in processes) + sum(_gone)
    assert admitted <= sum(windows)  # and nothing was admitted that no minute counted
    assert all(p.leased <= p.permits for p in processes)  # no lease admission without a permit
    held = {lease[0]: lease[2] for lease in leases}
    for process in processes:
        for lease in [*process.book.leases.values(), *process.book.retired]:
            if lease.id in held and not lease.retired:
                assert held[lease.id] == lease.escrow
                assert lease.committed + lease.pending <= lease.escrow


async def _tenant(
    sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> tuple[uuid.UUID, uuid.UUID, list[uuid.UUID | None]]:
    tk = await make_tenant_key(sessions)
    await set_limits(engine, tk.tenant_id, budget=BUDGET, concurrency=CONCURRENCY, rpm=RPM)
    users: list[uuid.UUID | None] = [None]
    async with engine.begin() as conn:
        for n, limit in enumerate((USER_BUDGET, None)):
            uid = uuid.uuid4()
            await conn.execute(
                text(
                    "INSERT INTO end_users (id, tenant_id, external_id, monthly_budget_usd) "
                    "VALUES (:id, :t, :x, :b)"
                ),
                {"id": uid, "t": tk.tenant_id, "x": f"user-{n}", "b": limit},
            )
            users.append(uid)
    return tk.tenant_id, tk.key_id, users


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_lease_invariant_holds_after_every_step(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], seed: int
) -> None:
    rng = random.Random(seed)
    _gone.clear()
    tenant, key, users = await _tenant(sessions, engine)
    limited = users[1]
    assert limited is not None
    processes = [Process.start(str(n)) for n in range(3)]
    reaper = Reaper(engine, "sim-reaper", STALE_S)
    outcomes: dict[str, int] = {}
    trace: list[str] = []
    auto = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with auto.connect() as conn:
        for p in processes:
            await p.heartbeat(conn)
        for _ in range(STEPS):
            p = rng.choice(processes)
            step = rng.choices(
                ["admit", "finish", "land", "beat", "return", "expire", "crash", "reap"],
                weights=[28, 28, 12, 10, 8, 3, 2, 3],
            )[0]
            if step == "admit":
                user = rng.choice(users)
                outcome = await p.admit(conn, rng, tenant, key, user)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            elif step == "finish":
                p.finish(rng)
            elif step == "land":
                await p.land(conn, rng)
            elif step == "beat":
                await p.heartbeat(conn)
            elif step == "return":
                await p.book.return_idle(conn, idle_s=0)
            elif step == "expire":  # its clock runs past the heartbeat's trust window
                p.clock.now += STALE_S
            elif step == "crash":  # kill -9 after its last flush: rows and leases stay behind
                await p.land(conn, rng, everything=True)
                await conn.execute(
                    text(
                        "UPDATE server_heartbeats SET last_seen = now() - interval '1 hour' "
                        "WHERE owner = :o"
                    ),
                    {"o": p.owner},
                )
                _gone.append(p.admitted)
                restarted = Process.start(p.owner.split("-")[1] + "r")
                await restarted.heartbeat(conn)
                processes[processes.index(p)] = restarted
            elif step == "reap":
                for live in processes:
                    await live.heartbeat(conn)
                await reaper.reap_once()
            trace.append(f"{step}:{p.owner}")
            await check(conn, tenant, limited, processes)
        for p in processes:  # the end: everything finishes, lands and is given back
            while p.running:
                p.finish(rng)
            await p.land(conn, rng, everything=True)
            await p.heartbeat(conn)
            await p.book.return_all(conn)
            await check(conn, tenant, limited, processes)
        await conn.execute(
            text("UPDATE server_heartbeats SET last_seen = now() - interval '1 hour'")
        )
        await reaper.reap_once()
        await check(conn, tenant, limited, processes)
        left = (
            await conn.execute(
                text(
                    "SELECT sum(reserved_usd), sum(in_flight) FROM spend_counters "
                    "WHERE tenant_id = :t"
                ),
                {"t": tenant},
            )
        ).one()
    assert left == (0, 0)
    # The walk did what it is about: leases, per-request reservations and refusals all happened.
    # The counts vary a little with the database clock (rpm windows turn at its minute), so the
    # floor is loose; the invariant itself is checked after every step above.
    assert outcomes.get("leased", 0) >= 8 and outcomes.get("ok", 0) >= 5, outcomes
    assert outcomes.get("budget", 0) + outcomes.get("user_budget", 0) > 0
    assert outcomes.get("rate", 0) + outcomes.get("concurrency", 0) > 0
