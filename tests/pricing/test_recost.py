"""Re-costing after a price correction: the ledger rows, the spend counters, the daily rollups
and the reports all move to the corrected price together, each row at the version in force when
it started, and a second run changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import anthropic
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.admin.helpers import ADMIN_TOKEN
from tests.pg import asyncpg_dsn
from tests.support import Gateway, TenantKey, settled_rows
from tests.test_cli import tollgate

HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}
MODEL = "claude-opus-9-2"
OTHER = "claude-sonnet-4-6"
HELLO: list[Any] = [{"role": "user", "content": "Hello"}]

# Hand-computed, in micro-dollars (tokens x USD per million), 64 output tokens each:
# v1: input 2, output 10, 1 h write 4 (2x input), read 0.2 (0.1x), web search $10 / 1000.
# v2 (the correction): input 3, output 15, 1 h write 7, read 0.5, web search $20 / 1000.
R1_V1 = Decimal("0.00264")  # 1000 x 2 + 64 x 10                  = 2640
R2_V1 = Decimal("0.00584")  # 2000 x 2 + 64 x 10 + 4000 x 0.2 + 100 x 4 = 5840
R2_V2 = Decimal("0.00966")  # 6000 + 960 + 2000 + 700                   = 9660
R3_V1 = Decimal("0.02164")  # 500 x 2 + 640 = 1640, + 2 searches x $0.01  = 0.02
R3_V2 = Decimal("0.04246")  # 500 x 3 + 960 = 2460, + 2 searches x $0.02  = 0.04
R4 = Decimal("0.003960")  # the other model (Sonnet 4.6): 1000 x 3 + 64 x 15 = 3960


async def _send(gw: Gateway, key: str, model: str, knobs: dict[str, int], user: str | None) -> None:
    async with anthropic.AsyncAnthropic(api_key=key, base_url=gw.url, max_retries=0) as client:
        await client.messages.create(
            model=model,
            max_tokens=64,
            messages=HELLO,
            metadata={"user_id": user} if user else {},
            extra_headers={f"x-sim-{k}": str(v) for k, v in knobs.items()},
        )


async def _scalar(engine: AsyncEngine, sql: str, **params: object) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def _state(engine: AsyncEngine, tenant: TenantKey) -> dict[str, Any]:
    """Everything a re-cost may touch, for comparing before and after."""
    t = {"t": tenant.tenant_id}
    return {
        "ledger": await _scalar(
            engine,
            "SELECT array_agg((id, cost_usd, price_version) ORDER BY id)::text "
            "FROM usage_ledger WHERE tenant_id = :t",
            **t,
        ),
        "counters": await _scalar(
            engine,
            "SELECT array_agg((end_user_id, spent_usd) ORDER BY end_user_id NULLS FIRST)::text "
            "FROM spend_counters WHERE tenant_id = :t",
            **t,
        ),
        "daily": await _scalar(
            engine,
            "SELECT array_agg((model, end_user_id, cost_usd) ORDER BY model, end_user_id)::text "
            "FROM usage_daily WHERE tenant_id = :t",
            **t,
        ),
        "daily_users": await _scalar(
            engine,
            "SELECT array_agg((end_user_id, cost_usd) ORDER BY end_user_id NULLS FIRST)::text "
            "FROM usage_daily_users WHERE tenant_id = :t",
            **t,
        ),
    }


async def _reports(gw: Gateway, tenant: TenantKey, day: str, next_day: str) -> dict[str, Any]:
    window = {"tenant_id": str(tenant.tenant_id), "from": day, "to": next_day}
    async with httpx.AsyncClient(base_url=gw.url, headers=HEADERS) as http:
        by_model = (await http.get("/admin/usage", params={**window, "group_by": "model"})).json()
        by_user = (await http.get("/admin/usage", params={**window, "group_by": "user"})).json()
        usage = (await http.get("/v1/usage", headers={"x-api-key": tenant.key})).json()
    return {
        "model": {r["model"]: Decimal(r["cost_usd"]) for r in by_model["rows"]},
        "user": {r["user"]: Decimal(r["cost_usd"]) for r in by_user["rows"]},
        "spent": Decimal(usage["spent_usd"]),
        "users": {u["user"]: Decimal(u["spent_usd"]) for u in usage["users"]},
    }


async def test_recost_moves_ledger_counters_rollups_and_reports_together_and_is_idempotent(
    gateway_factory: Callable[..., Gateway],
    tenant: TenantKey,
    engine: AsyncEngine,
    database_url: str,
) -> None:
    gw = gateway_factory(admin_token=ADMIN_TOKEN)
    v1_from = datetime.now(UTC) - timedelta(hours=1)
    async with httpx.AsyncClient(base_url=gw.url, headers=HEADERS) as http:
        v1 = await http.put(
            f"/admin/prices/{MODEL}",
            json={"input": "2", "output": "10", "effective_from": v1_from.isoformat()},
        )
    assert v1.status_code == 201, v1.text
    await _send(gw, tenant.key, MODEL, {"input-tokens": 1000}, None)
    [r1] = await settled_rows(engine, 1)
    knobs2 = {"input-tokens": 2000, "cache-read-tokens": 4000, "cache-write-1h-tokens": 100}
    await _send(gw, tenant.key, MODEL, knobs2, "alice")
    knobs3 = {"input-tokens": 500, "web-search-requests": 2}
    await _send(gw, tenant.key, MODEL, knobs3, "alice")
    await _send(gw, tenant.key, OTHER, {"input-tokens": 1000}, None)
    rows = await settled_rows(engine, 4)
    r2, r3 = (r for r in rows if r["model"] == MODEL and r["id"] != r1["id"])
    assert [r1["cost_usd"], r2["cost_usd"], r3["cost_usd"]] == [R1_V1, R2_V1, R3_V1]
    assert r1["started_at"] < r2["started_at"]

    # The correction: in force from between r1 and r2, so r1 keeps v1 and r2, r3 move to v2.
    v2_from = r1["started_at"] + (r2["started_at"] - r1["started_at"]) / 2
    async with httpx.AsyncClient(base_url=gw.url, headers=HEADERS) as http:
        v2 = await http.put(
            f"/admin/prices/{MODEL}",
            json={
                "input": "3",
                "output": "15",
                "cache_write_1h": "7",
                "cache_read": "0.5",
                "web_search_per_1000": "20",
                "effective_from": v2_from.isoformat(),
            },
        )
    assert v2.status_code == 201, v2.text
    day = r1["started_at"].date().isoformat()
    # two whole UTC days: the four requests may straddle midnight
    next_day = (r1["started_at"].date() + timedelta(days=2)).isoformat()
    before = await _reports(gw, tenant, day, next_day)
    assert before["model"][MODEL] == R1_V1 + R2_V1 + R3_V1
    assert before["spent"] == R1_V1 + R2_V1 + R3_V1 + R4

    async with httpx.AsyncClient(base_url=gw.url, headers=HEADERS) as http:
        response = await http.post(
            f"/admin/prices/{MODEL}/recost", json={"from": day, "to": next_day}
        )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["changed"]) == (3, 2)
    assert Decimal(report["before_usd"]) == R1_V1 + R2_V1 + R3_V1
    assert Decimal(report["after_usd"]) == R1_V1 + R2_V2 + R3_V2
    assert report["versions"] == sorted([v1.json()["version"], v2.json()["version"]], key=int)

    after_rows = {r["id"]: r for r in await settled_rows(engine, 4)}
    assert after_rows[r1["id"]]["cost_usd"] == R1_V1
    assert after_rows[r1["id"]]["price_version"] == v1.json()["version"]
    assert after_rows[r2["id"]]["cost_usd"] == R2_V2
    assert after_rows[r3["id"]]["cost_usd"] == R3_V2
    assert after_rows[r3["id"]]["price_version"] == v2.json()["version"]
    assert {r["cost_usd"] for r in after_rows.values() if r["model"] == OTHER} == {R4}

    after = await _reports(gw, tenant, day, next_day)
    assert after["model"] == {MODEL: R1_V1 + R2_V2 + R3_V2, OTHER: R4}
    assert after["spent"] == R1_V1 + R2_V2 + R3_V2 + R4  # the tenant's spend counter
    assert after["users"]["alice"] == R2_V2 + R3_V2  # alice's spend counter
    assert after["user"]["alice"] == R2_V2 + R3_V2  # the per-user rollup
    assert await _scalar(
        engine, "SELECT sum(cost_usd) FROM usage_daily WHERE tenant_id = :t", t=tenant.tenant_id
    ) == sum(r["cost_usd"] for r in after_rows.values())

    # Again, from the command line: nothing changes, and the run is recorded with equal totals.
    settled = await _state(engine, tenant)
    env = {"DATABASE_URL": asyncpg_dsn(database_url)}
    again = tollgate("prices", "recost", "--model", MODEL, "--from", day, "--to", next_day, env=env)
    assert again.returncode == 0, again.stderr
    total = f"{R1_V1 + R2_V2 + R3_V2}"
    assert "re-costed 3 claude-opus-9-2 rows" in again.stdout and "0 changed" in again.stdout
    assert f"before {total} USD" in again.stdout and f"after  {total} USD" in again.stdout
    assert await _state(engine, tenant) == settled
    recorded = await _scalar(
        engine,
        "SELECT array_agg((rows, before_usd, after_usd) ORDER BY id)::text FROM price_recosts",
    )
    assert recorded == (
        f'{{"(3,{R1_V1 + R2_V1 + R3_V1:.10f},{R1_V1 + R2_V2 + R3_V2:.10f})",'
        f'"(3,{R1_V1 + R2_V2 + R3_V2:.10f},{R1_V1 + R2_V2 + R3_V2:.10f})"}}'
    )


async def test_recost_refuses_an_unknown_model_and_an_empty_window(
    gateway_factory: Callable[..., Gateway], database_url: str
) -> None:
    gw = gateway_factory(admin_token=ADMIN_TOKEN)
    async with httpx.AsyncClient(base_url=gw.url, headers=HEADERS) as http:
        unknown = await http.post(
            "/admin/prices/claude-nope-1/recost", json={"from": "2026-11-01", "to": "2026-12-01"}
        )
        empty = await http.post(
            f"/admin/prices/{OTHER}/recost", json={"from": "2026-12-01", "to": "2026-11-01"}
        )
        bad = await http.post(f"/admin/prices/{OTHER}/recost", json={"from": "soon"})
    assert unknown.status_code == 404 and "claude-nope-1" in unknown.json()["error"]["message"]
    assert empty.status_code == 400 and bad.status_code == 400
    env = {"DATABASE_URL": asyncpg_dsn(database_url)}
    cli = tollgate(
        "prices", "recost", "--model", "x-1", "--from", "2026-11-01", "--to", "2026-12-01", env=env
    )
    assert cli.returncode == 1 and "x-1 is not in the price book" in cli.stderr
