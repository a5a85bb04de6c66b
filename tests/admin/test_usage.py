"""`GET /v1/usage`: the calling tenant's spend this month, from the quota counters, agreeing
with the ledger; never another tenant's numbers or users."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.pricing.cost import format_usd
from api.quotas.periods import calendar_month
from tests.admin.helpers import ADMIN_TOKEN, MESSAGES, MODEL, assert_error, sdk
from tests.support import Gateway, TenantKey, make_tenant_key, settled_rows


async def _usage(gateway: Gateway, key: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get("/v1/usage", headers={"x-api-key": key})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _ledger_sum(engine: AsyncEngine, tenant_id: uuid.UUID, user: str | None = None) -> str:
    sql = """
        SELECT COALESCE(sum(l.cost_usd), 0) FROM usage_ledger l
        LEFT JOIN end_users u ON u.id = l.end_user_id
        WHERE l.tenant_id = :tenant_id AND (CAST(:user AS text) IS NULL OR u.external_id = :user)
    """
    async with engine.connect() as conn:
        total = await conn.execute(text(sql), {"tenant_id": tenant_id, "user": user})
        value: Decimal = total.scalar_one()
    return format_usd(value)


async def _spend(gateway: Gateway, key: str, user: str, *, stream: bool) -> None:
    client = sdk(gateway, key)
    if stream:
        async with client.messages.stream(
            model=MODEL, max_tokens=40, messages=MESSAGES, metadata={"user_id": user}
        ) as events:
            await events.get_final_message()
    else:
        await client.messages.create(
            model=MODEL, max_tokens=20, messages=MESSAGES, metadata={"user_id": user}
        )


def _period() -> tuple[str, str]:
    start, end = calendar_month(datetime.now(UTC))
    return start.isoformat().replace("+00:00", "Z"), end.isoformat().replace("+00:00", "Z")


async def test_usage_before_any_request_is_all_zeros(gateway: Gateway, tenant: TenantKey) -> None:
    start, end = _period()
    assert await _usage(gateway, tenant.key) == {
        "tenant_id": str(tenant.tenant_id),
        "plan": "pro",
        "period_start": start,
        "period_end": end,
        "limit_usd": "100",
        "spent_usd": "0",
        "reserved_usd": "0",
        "remaining_usd": "100",
        "users": [],
    }


async def test_usage_matches_the_ledger_and_shows_only_the_callers_tenant(
    gateway: Gateway, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    a = await make_tenant_key(sessions, name="tenant-a")
    b = await make_tenant_key(sessions, name="tenant-b")
    await _spend(gateway, a.key, "alice", stream=True)
    await _spend(gateway, a.key, "alice", stream=False)
    # B spends more, under a user of the same name and one of its own.
    await _spend(gateway, b.key, "alice", stream=True)
    await _spend(gateway, b.key, "alice", stream=True)
    await _spend(gateway, b.key, "bob", stream=False)
    await settled_rows(engine, 5)

    usage_a = await _usage(gateway, a.key)
    spent_a = await _ledger_sum(engine, a.tenant_id)
    assert Decimal(spent_a) > 0
    assert usage_a["tenant_id"] == str(a.tenant_id)
    assert usage_a["spent_usd"] == spent_a
    assert usage_a["reserved_usd"] == "0"
    assert usage_a["remaining_usd"] == format_usd(Decimal(100) - Decimal(spent_a))
    assert usage_a["users"] == [
        {"user": "alice", "requests": 2, "spent_usd": spent_a, "limit_usd": None}
    ]

    usage_b = await _usage(gateway, b.key)
    spent_b = await _ledger_sum(engine, b.tenant_id)
    assert usage_b["tenant_id"] == str(b.tenant_id)
    assert usage_b["spent_usd"] == spent_b != spent_a
    assert [(u["user"], u["requests"]) for u in usage_b["users"]] == [("alice", 2), ("bob", 1)]
    assert usage_b["users"][0]["spent_usd"] == await _ledger_sum(engine, b.tenant_id, "alice")
    assert str(b.tenant_id) not in str(usage_a) and "bob" not in str(usage_a)


async def test_usage_shows_user_limits_and_the_tenant_override(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    for user in ("alice", "carol"):
        await _spend(admin_gateway, tenant.key, user, stream=False)
    await settled_rows(engine, 2)
    url = f"/admin/tenants/{tenant.tenant_id}"
    await admin.put(f"{url}/users/alice/limit", json={"monthly_budget_usd": "3"})
    await admin.patch(url, json={"monthly_budget_usd": "0.5", "user_default_budget_usd": "1"})

    usage = await _usage(admin_gateway, tenant.key)
    assert usage["limit_usd"] == "0.5"
    spent = Decimal(usage["spent_usd"])
    assert usage["remaining_usd"] == format_usd(Decimal("0.5") - spent)
    assert [(u["user"], u["limit_usd"]) for u in usage["users"]] == [
        ("alice", "3"),
        ("carol", "1"),
    ]

    await admin.patch(url, json={"monthly_budget_usd": format_usd(spent / 2)})
    assert (await _usage(admin_gateway, tenant.key))["remaining_usd"] == "0"


async def test_usage_needs_a_tenant_key(admin_gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=admin_gateway.url) as http:
        missing = await http.get("/v1/usage")
        bogus = await http.get("/v1/usage", headers={"x-api-key": "tg_live_" + "x" * 43})
        admin_token = await http.get(
            "/v1/usage", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
        )
    for response in (missing, bogus, admin_token):
        assert_error(response, 401, "authentication_error")
