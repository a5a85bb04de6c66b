"""The daily rollups equal the ledger exactly, whatever the order of settles: a replayed
settlement counts once, an abandoned request settled for real later counts once (under its real
model), concurrent settles never lose an update; whole days are read from the rollups."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.reports.helpers import Usage, add_request, open_request, settle, utc
from tests.support import TenantKey, make_tenant_key

_SUMS = """count(*) AS requests, sum(input_tokens) AS input, sum(output_tokens) AS output,
    sum(cache_write_5m_tokens) AS cw5m, sum(cache_write_1h_tokens) AS cw1h,
    sum(cache_read_tokens) AS cread, sum(web_search_requests) AS web, sum(cost_usd) AS cost"""
_ROLLED = """sum(requests), sum(input_tokens), sum(output_tokens), sum(cache_write_5m_tokens),
    sum(cache_write_1h_tokens), sum(cache_read_tokens), sum(web_search_requests), sum(cost_usd)"""
_DAY = "(started_at AT TIME ZONE 'UTC')::date"


async def assert_rollups_equal_ledger(engine: AsyncEngine) -> int:
    """Both rollups, group by group, equal the ledger's final rows; returns the request count."""
    checks = [
        (
            f"SELECT tenant_id, {_DAY}, api_key_id, end_user_id, model, endpoint, {_SUMS} "
            "FROM usage_ledger WHERE status <> 'in_flight' GROUP BY 1, 2, 3, 4, 5, 6",
            "SELECT tenant_id, day, api_key_id, end_user_id, model, endpoint, "
            f"{_ROLLED} FROM usage_daily GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(requests) <> 0",
        ),
        (
            f"SELECT tenant_id, {_DAY}, end_user_id, {_SUMS} FROM usage_ledger "
            "WHERE status <> 'in_flight' GROUP BY 1, 2, 3",
            f"SELECT tenant_id, day, end_user_id, {_ROLLED} FROM usage_daily_users "
            "GROUP BY 1, 2, 3 HAVING sum(requests) <> 0",
        ),
    ]
    async with engine.connect() as conn:
        for ledger_sql, rollup_sql in checks:
            ledger = sorted((tuple(r) for r in await conn.execute(text(ledger_sql))), key=repr)
            rolled = sorted((tuple(r) for r in await conn.execute(text(rollup_sql))), key=repr)
            assert rolled == ledger
        leftovers = "SELECT count(*) FROM usage_daily WHERE requests = 0 AND cost_usd <> 0"
        assert (await conn.execute(text(leftovers))).scalar_one() == 0
    return sum(int(r[-8]) for r in ledger)  # the requests column


def _usage(rng: random.Random, status: str = "ok") -> Usage:
    return Usage(
        model=rng.choice(["claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"]),
        input=rng.randrange(5000),
        output=rng.randrange(900),
        cw5m=rng.choice([0, 0, rng.randrange(3000)]),
        cw1h=rng.choice([0, 0, 0, rng.randrange(3000)]),
        cread=rng.choice([0, rng.randrange(20000)]),
        cost=Decimal(rng.randrange(1, 10**9)) / 10**10,
        status=status,
    )


async def test_a_replayed_settlement_counts_once(engine: AsyncEngine, tenant: TenantKey) -> None:
    rng = random.Random(1)
    async with engine.begin() as conn:
        rid = await open_request(
            conn, tenant.tenant_id, tenant.key_id, "alice", utc("2026-10-01T10:00:00")
        )
    usage = _usage(rng)
    for attempt in range(3):  # the first settle, then spool replays
        async with engine.begin() as conn:
            assert await settle(conn, rid, usage) is (attempt == 0)
    assert await assert_rollups_equal_ledger(engine) == 1


async def test_abandoned_then_settled_for_real_counts_once_under_the_real_model(
    engine: AsyncEngine, tenant: TenantKey
) -> None:
    rng = random.Random(2)
    at = utc("2026-10-01T23:59:59.999999")
    ids = []
    async with engine.begin() as conn:
        for user, endpoint in (("alice", "messages"), (None, "chat"), ("bob", "chat_completions")):
            t = tenant
            ids.append(await open_request(conn, t.tenant_id, t.key_id, user, at, endpoint=endpoint))
    for rid in ids:  # the reaper gives up on all three (as api/ledger/reaper.py settles them)
        async with engine.begin() as conn:
            assert await settle(conn, rid, Usage(model="claude-haiku-4-5", status="abandoned"))
            assert not await settle(conn, rid, Usage(model="claude-haiku-4-5", status="abandoned"))
    assert await assert_rollups_equal_ledger(engine) == 3
    # The spooled real settlements arrive: one under another model, then replays of each.
    real = [_usage(rng) for _ in ids]
    real[0] = Usage(**{**real[0].__dict__, "model": "claude-opus-4-6"})
    for rid, usage in zip(ids, real, strict=True):
        for attempt in range(2):
            async with engine.begin() as conn:
                assert await settle(conn, rid, usage) is (attempt == 0)
        assert await assert_rollups_equal_ledger(engine) == 3


async def test_concurrent_settles_keep_the_rollups_exact(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tenants = [await make_tenant_key(sessions, name=f"t{i}") for i in range(3)]
    statuses = ["ok"] * 3 + ["incomplete", "client_disconnected", "upstream_error", "abandoned"]

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(40):
            t = rng.choice(tenants)
            user = rng.choice(["alice", "bob", "carol", None])
            at = utc("2026-10-01T00:00:00") + timedelta(seconds=rng.randrange(3 * 86400))
            endpoint = rng.choice(["messages", "chat", "chat_completions"])
            async with engine.begin() as conn:
                rid = await open_request(conn, t.tenant_id, t.key_id, user, at, endpoint=endpoint)
            status = rng.choice(statuses)
            async with engine.begin() as conn:
                await settle(conn, rid, _usage(rng, status))
            still_abandoned = status == "abandoned"
            if still_abandoned and rng.random() < 0.7:  # a late real settlement
                async with engine.begin() as conn:
                    assert await settle(conn, rid, _usage(rng))
                still_abandoned = False
            if rng.random() < 0.3:  # a replay: refused, unless the row was only abandoned
                async with engine.begin() as conn:
                    assert await settle(conn, rid, _usage(rng)) is still_abandoned

    await asyncio.gather(*(worker(i) for i in range(4)))  # the test engine's pool: 5
    assert await assert_rollups_equal_ledger(engine) == 160


async def test_whole_days_come_from_the_rollup_and_edges_from_the_ledger(
    admin: httpx.AsyncClient, engine: AsyncEngine, tenant: TenantKey
) -> None:
    for at in ("2026-10-01T08:00:00", "2026-10-02T08:00:00"):
        usage = Usage(input=10, cost=Decimal("0.5"))
        await add_request(engine, tenant.tenant_id, tenant.key_id, "alice", utc(at), usage)
    async with engine.begin() as conn:  # a marker only a rollup read would show
        await conn.execute(text("UPDATE usage_daily_users SET input_tokens = input_tokens + 1000"))
        await conn.execute(text("UPDATE usage_daily SET input_tokens = input_tokens + 1000000"))

    async def total(**params: str) -> int:
        body = (await admin.get("/admin/usage", params=params)).json()
        return int(body["total"]["input_tokens"])

    assert await total(**{"from": "2026-10-01", "to": "2026-10-03"}) == 2020
    haiku = {"from": "2026-10-01", "to": "2026-10-03", "model": "claude-haiku-4-5"}
    assert await total(**haiku) == 2_000_020
    assert await total(**{"from": "2026-10-01T00:00:01Z", "to": "2026-10-03"}) == 1020
    assert await total(**{"from": "2026-10-01T00:00:01Z", "to": "2026-10-02T23:00:00Z"}) == 20
    key = {"key_id": str(tenant.key_id), "from": "2026-10-01T00:00:01Z", "to": "2026-10-03"}
    assert await total(**key) == 1_000_020


async def test_no_end_user_and_an_unknown_key_are_kept_apart(
    engine: AsyncEngine, tenant: TenantKey
) -> None:
    at = utc("2026-10-01T12:00:00")
    await add_request(engine, tenant.tenant_id, tenant.key_id, None, at, Usage(input=1))
    await add_request(engine, tenant.tenant_id, tenant.key_id, None, at, Usage(input=2))
    await add_request(engine, tenant.tenant_id, tenant.key_id, "x", at, Usage(input=4))
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT end_user_id IS NULL, requests, input_tokens FROM usage_daily_users ORDER BY 1"
        ))).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [(False, 1, 4), (True, 2, 3)]
    assert await assert_rollups_equal_ledger(engine) == 3
    assert uuid.UUID(str(tenant.key_id))
