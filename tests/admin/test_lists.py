"""`GET /admin/whoami`, `GET /admin/plans` and `GET /admin/tenants/{id}/users`: the read-only
routes the console reads."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx

from tests.admin.helpers import assert_error
from tests.support import Gateway, TenantKey, wait_until


async def test_plans_are_listed_cheapest_first_with_their_limits(admin: httpx.AsyncClient) -> None:
    put = await admin.put("/admin/plans/team", json={"monthly_budget_usd": "0.5", "name": "Team"})
    assert put.status_code == 201
    plans = (await admin.get("/admin/plans")).json()["data"]
    codes = [plan["code"] for plan in plans]
    assert "team" in codes and "pro" in codes and "free" in codes
    team = next(plan for plan in plans if plan["code"] == "team")
    assert team == put.json()
    budgets = [plan["monthly_budget_usd"] for plan in plans]
    assert [Decimal(b) for b in budgets] == sorted(Decimal(b) for b in budgets)


async def test_users_list_limits_and_this_periods_spend(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    assert (await admin.get(f"/admin/tenants/{tenant.tenant_id}/users")).json() == {"data": []}
    limit = await admin.put(
        f"/admin/tenants/{tenant.tenant_id}/users/bob/limit", json={"monthly_budget_usd": "2.5"}
    )
    assert limit.status_code == 200
    async with httpx.AsyncClient(base_url=admin_gateway.url, timeout=15) as http:
        sent = await http.post(
            "/v1/messages",
            headers={"x-api-key": tenant.key},
            json={
                "model": "claude-haiku-4-5",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "Hi"}],
                "metadata": {"user_id": "alice"},
            },
        )
    assert sent.status_code == 200, sent.text
    users: list[dict[str, Any]] = []

    async def settled() -> bool:  # the request settles right after its answer
        nonlocal users
        users = (await admin.get(f"/admin/tenants/{tenant.tenant_id}/users")).json()["data"]
        return [(u["user"], u["requests"]) for u in users] == [("alice", 1), ("bob", 0)]

    await wait_until(settled)
    alice, bob = users
    assert alice["monthly_budget_usd"] is None and alice["requests"] == 1
    assert alice["spent_usd"] != "0" and alice["period_end"] is not None
    assert bob["monthly_budget_usd"] == "2.5" and bob["spent_usd"] == "0"
    assert bob["requests"] == 0 and bob["period_start"] is None


async def test_users_of_an_unknown_tenant_is_404(admin: httpx.AsyncClient) -> None:
    assert_error(await admin.get(f"/admin/tenants/{uuid.uuid4()}/users"), 404, "not_found_error")


async def test_whoami_names_the_token_and_its_role(
    admin: httpx.AsyncClient, admin_gateway: Gateway
) -> None:
    assert (await admin.get("/admin/whoami")).json() == {"actor": "bootstrap", "role": "admin"}
    made = await admin.post("/admin/tokens", json={"name": "ops-viewer", "role": "viewer"})
    assert made.status_code == 201, made.text
    headers = {"authorization": f"Bearer {made.json()['token']}"}
    async with httpx.AsyncClient(base_url=admin_gateway.url, headers=headers) as viewer:
        assert (await viewer.get("/admin/whoami")).json() == {
            "actor": "ops-viewer",
            "role": "viewer",
        }
        assert_error(
            await viewer.get("/admin/whoami", headers={"authorization": "Bearer x"}),
            401,
            "authentication_error",
        )
