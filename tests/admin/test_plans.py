"""`PUT /admin/plans/{code}`: the fields given are set; a new code creates the plan."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.db.models import Plan
from tests.admin.helpers import assert_error
from tests.support import TenantKey


async def test_put_a_new_code_creates_the_plan_with_defaults(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await admin.put("/admin/plans/team", json={"monthly_budget_usd": "250.75"})
    assert response.status_code == 201
    assert response.json() == {
        "code": "team",
        "name": "team",
        "monthly_budget_usd": "250.75",
        "rpm_limit": 60,
        "max_concurrent": 4,
        "quota_mode": "hard",
        "razorpay_plan_id": None,
        "allowed_models": None,
    }
    async with sessions() as session:
        plan = await session.get(Plan, "team")
    assert plan is not None and plan.monthly_budget_usd == 250.75


async def test_put_a_new_code_with_every_field(admin: httpx.AsyncClient) -> None:
    body = {
        "name": "Enterprise",
        "monthly_budget_usd": 5000,
        "rpm_limit": 6000,
        "max_concurrent": 256,
        "razorpay_plan_id": "plan_Ent123",
        "quota_mode": "soft",
    }
    response = await admin.put("/admin/plans/enterprise", json=body)
    assert response.status_code == 201
    assert response.json() == {
        **body,
        "code": "enterprise",
        "monthly_budget_usd": "5000",
        "allowed_models": None,
    }


async def test_put_an_existing_code_sets_only_the_fields_given(
    admin: httpx.AsyncClient, tenant: TenantKey
) -> None:
    response = await admin.put("/admin/plans/pro", json={"rpm_limit": 900})
    assert response.status_code == 200
    assert response.json() == {
        "code": "pro",
        "name": "Pro",
        "monthly_budget_usd": "100",
        "rpm_limit": 900,
        "max_concurrent": 32,
        "quota_mode": "hard",
        "razorpay_plan_id": None,
        "allowed_models": None,
    }
    limits = (await admin.get(f"/admin/tenants/{tenant.tenant_id}")).json()["limits"]
    assert limits["rpm_limit"] == 900  # tenants on the plan follow it

    linked = await admin.put("/admin/plans/pro", json={"razorpay_plan_id": "plan_Pro1"})
    assert linked.json()["razorpay_plan_id"] == "plan_Pro1"
    unlinked = await admin.put("/admin/plans/pro", json={"razorpay_plan_id": None})
    assert unlinked.json()["razorpay_plan_id"] is None
    assert (await admin.put("/admin/plans/pro", json={})).json() == unlinked.json()


async def test_a_tenant_can_be_put_on_a_new_plan(
    admin: httpx.AsyncClient, tenant: TenantKey
) -> None:
    await admin.put("/admin/plans/starter", json={"monthly_budget_usd": "20", "rpm_limit": 30})
    created = await admin.post("/admin/tenants", json={"name": "Umbrella", "plan": "starter"})
    assert created.status_code == 201
    moved = await admin.patch(f"/admin/tenants/{tenant.tenant_id}", json={"plan": "starter"})
    assert moved.json()["limits"]["monthly_budget_usd"] == "20"
    assert moved.json()["limits"]["rpm_limit"] == 30


async def test_creating_a_plan_requires_a_budget(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await admin.put("/admin/plans/nobudget", json={"rpm_limit": 10})
    message = assert_error(response, 404, "not_found_error")
    assert "monthly_budget_usd is required to create it" in message
    async with sessions() as session:
        assert await session.get(Plan, "nobudget") is None


async def test_a_razorpay_plan_id_belongs_to_one_plan(admin: httpx.AsyncClient) -> None:
    await admin.put("/admin/plans/pro", json={"razorpay_plan_id": "plan_Shared"})
    taken = await admin.put("/admin/plans/free", json={"razorpay_plan_id": "plan_Shared"})
    assert "pro" in assert_error(taken, 409, "invalid_request_error")
    # Setting a plan's own id again is fine.
    again = await admin.put("/admin/plans/pro", json={"razorpay_plan_id": "plan_Shared"})
    assert again.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"monthly_budget_usd": None}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "-5"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "Infinity"}, "monthly_budget_usd"),
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"rpm_limit": None}, "rpm_limit"),
        ({"max_concurrent": -1}, "max_concurrent"),
        ({"max_concurrent": 2.5}, "max_concurrent"),
        ({"quota_mode": "strict"}, "quota_mode"),
        ({"quota_mode": None}, "quota_mode"),
        ({"allowed_models": ["x"]}, "allowed_models"),
    ],
)
async def test_put_plan_rejects_bad_input_and_changes_nothing(
    admin: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await admin.put("/admin/plans/pro", json={"rpm_limit": 1, **body})
    assert assert_error(response, 400, "invalid_request_error").startswith(f"{field}:")
    async with sessions() as session:
        plan = await session.get(Plan, "pro")
    assert plan is not None and plan.rpm_limit == 600


@pytest.mark.parametrize("code", ["has space", "-leading", "x" * 65, "semi;colon"])
async def test_put_plan_rejects_a_bad_code(admin: httpx.AsyncClient, code: str) -> None:
    response = await admin.put(f"/admin/plans/{code}", json={"monthly_budget_usd": 1})
    assert_error(response, 400, "invalid_request_error")
