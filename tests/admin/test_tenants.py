"""Creating, listing, reading and changing tenants through `/admin/tenants`; the limits shown are
the ones in force, and changes reach the proxy."""

from __future__ import annotations

import uuid
from typing import Any

import anthropic
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.db.models import Tenant
from api.tenants.service import find_tenant_by_name
from tests.admin.helpers import MESSAGES, MODEL, assert_error, sdk
from tests.support import Gateway, TenantKey

PRO_LIMITS = {
    "monthly_budget_usd": "100",
    "rpm_limit": 600,
    "max_concurrent": 32,
    "quota_mode": "hard",
    "user_default_budget_usd": None,
}
NO_OVERRIDES = {
    "monthly_budget_usd": None,
    "rpm_limit": None,
    "max_concurrent": None,
    "quota_mode": None,
}


async def test_create_tenant_defaults_to_the_free_plan(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await admin.post("/admin/tenants", json={"name": "  Globex  "})
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "name": "Globex", "plan": "free"}
    async with sessions() as session:
        row = await session.get(Tenant, uuid.UUID(body["id"]))
    assert row is not None and row.plan_code == "free" and row.status == "active"


async def test_a_taken_tenant_name_is_409_and_creates_nothing(
    admin: httpx.AsyncClient, tenant: TenantKey, sessions: async_sessionmaker[AsyncSession]
) -> None:
    response = await admin.post("/admin/tenants", json={"name": "  acme ", "plan": "free"})
    message = assert_error(response, 409, "invalid_request_error")
    assert message == "name: a tenant named 'acme' already exists"
    async with sessions() as session:
        assert (await find_tenant_by_name(session, "acme")) is not None  # one, unambiguous
        count = await session.scalar(select(func.count()).select_from(Tenant))
    assert count == 1
    assert (await admin.post("/admin/tenants", json={"name": "Acme"})).status_code == 201


async def test_create_tenant_on_a_named_plan(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/admin/tenants", json={"name": "Initech", "plan": "pro"})
    assert response.status_code == 201
    assert response.json()["plan"] == "pro"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 7}, "name"),
        ({"name": "x" * 257}, "name"),
        ({"name": "Hooli", "plan": None}, "plan"),
        ({"name": "Hooli", "colour": "red"}, "colour"),
    ],
)
async def test_create_tenant_rejects_bad_input(
    admin: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    body: dict[str, Any],
    field: str,
) -> None:
    message = assert_error(
        await admin.post("/admin/tenants", json=body), 400, "invalid_request_error"
    )
    assert message.startswith(f"{field}:")
    async with sessions() as session:
        assert (await session.execute(select(Tenant))).first() is None


async def test_an_unknown_plan_is_not_found(admin: httpx.AsyncClient, tenant: TenantKey) -> None:
    created = await admin.post("/admin/tenants", json={"name": "Hooli", "plan": "platinum"})
    assert "platinum" in assert_error(created, 404, "not_found_error")
    url = f"/admin/tenants/{tenant.tenant_id}"
    before = (await admin.get(url)).json()
    patched = await admin.patch(url, json={"max_concurrent": 5, "plan": "platinum"})
    assert "platinum" in assert_error(patched, 404, "not_found_error")
    assert (await admin.get(url)).json() == before


async def test_money_is_a_plain_decimal_string_and_counters_json_integers(
    admin: httpx.AsyncClient, tenant: TenantKey
) -> None:
    url = f"/admin/tenants/{tenant.tenant_id}"
    for text in ("", " 5", "1e3", "+5", "05", "1_000", "\u0665"):
        refused = await admin.patch(url, json={"monthly_budget_usd": text})
        assert assert_error(refused, 400, "invalid_request_error").startswith("monthly_budget_usd:")
    accepted = await admin.patch(url, json={"monthly_budget_usd": "0.5", "max_concurrent": 7.0})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["limits"]["monthly_budget_usd"] == "0.5"
    assert accepted.json()["limits"]["max_concurrent"] == 7


async def test_create_tenant_rejects_malformed_json(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/admin/tenants", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_request_error")


async def test_get_tenant_shows_the_plan_limits_and_no_subscription(
    admin: httpx.AsyncClient, tenant: TenantKey
) -> None:
    response = await admin.get(f"/admin/tenants/{tenant.tenant_id}")
    assert response.status_code == 200
    assert response.json() == {
        "id": str(tenant.tenant_id),
        "name": "acme",
        "plan": "pro",
        "status": "active",
        "limits": PRO_LIMITS,
        "overrides": NO_OVERRIDES,
        "subscription": None,
    }


async def test_list_tenants_returns_every_tenant_in_creation_order(
    admin: httpx.AsyncClient, tenant: TenantKey
) -> None:
    created = await admin.post("/admin/tenants", json={"name": "second"})
    listed = (await admin.get("/admin/tenants")).json()
    assert [t["id"] for t in listed] == [str(tenant.tenant_id), created.json()["id"]]
    assert listed[1]["limits"]["monthly_budget_usd"] == "5"  # the free plan's
    assert listed[0] == (await admin.get(f"/admin/tenants/{tenant.tenant_id}")).json()


async def test_unknown_or_malformed_tenant_id(admin: httpx.AsyncClient) -> None:
    missing = await admin.get(f"/admin/tenants/{uuid.uuid4()}")
    assert "not found" in assert_error(missing, 404, "not_found_error")
    patched = await admin.patch(f"/admin/tenants/{uuid.uuid4()}", json={"rpm_limit": 5})
    assert_error(patched, 404, "not_found_error")
    assert_error(await admin.get("/admin/tenants/not-a-uuid"), 400, "invalid_request_error")


async def test_patch_overrides_become_the_limits_and_null_restores_the_plans(
    admin: httpx.AsyncClient, tenant: TenantKey
) -> None:
    url = f"/admin/tenants/{tenant.tenant_id}"
    changes = {
        "monthly_budget_usd": 12.5,  # a JSON number is read as its decimal text
        "rpm_limit": 7,
        "max_concurrent": 3,
        "quota_mode": "soft",
        "user_default_budget_usd": "0.25",
    }
    response = await admin.patch(url, json=changes)
    assert response.status_code == 200
    body = response.json()
    assert body["limits"] == {**changes, "monthly_budget_usd": "12.5"}
    assert body["overrides"] == {
        "monthly_budget_usd": "12.5",
        "rpm_limit": 7,
        "max_concurrent": 3,
        "quota_mode": "soft",
    }
    assert (await admin.get(url)).json() == body

    cleared = await admin.patch(
        url,
        json={"monthly_budget_usd": None, "rpm_limit": None, "quota_mode": None},
    )
    assert cleared.json()["limits"] == {
        **PRO_LIMITS,
        "max_concurrent": 3,  # not in the body: left alone
        "user_default_budget_usd": "0.25",
    }
    assert (await admin.patch(url, json={})).json() == cleared.json()


async def test_patch_plan_changes_the_limits_that_are_not_overridden(
    admin: httpx.AsyncClient, tenant: TenantKey
) -> None:
    url = f"/admin/tenants/{tenant.tenant_id}"
    await admin.patch(url, json={"rpm_limit": 9})
    body = (await admin.patch(url, json={"plan": "free"})).json()
    assert body["plan"] == "free"
    assert body["limits"]["monthly_budget_usd"] == "5"
    assert body["limits"]["max_concurrent"] == 2
    assert body["limits"]["rpm_limit"] == 9


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"plan": None}, "plan"),
        ({"status": "deleted"}, "status"),
        ({"status": None}, "status"),
        ({"rpm_limit": 0}, "rpm_limit"),
        ({"rpm_limit": -3}, "rpm_limit"),
        ({"rpm_limit": 1.5}, "rpm_limit"),
        ({"rpm_limit": "5"}, "rpm_limit"),
        ({"rpm_limit": True}, "rpm_limit"),
        ({"rpm_limit": 2**31}, "rpm_limit"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"monthly_budget_usd": "-1"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": -0.01}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "NaN"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "Infinity"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "ten"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": True}, "monthly_budget_usd"),
        ({"monthly_budget_usd": [1]}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "1e10"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "0.00000000001"}, "monthly_budget_usd"),
        ({"quota_mode": "medium"}, "quota_mode"),
        ({"user_default_budget_usd": "-0.5"}, "user_default_budget_usd"),
        ({"name": "renamed"}, "name"),
    ],
)
async def test_patch_rejects_bad_input_and_changes_nothing(
    admin: httpx.AsyncClient, tenant: TenantKey, body: dict[str, Any], field: str
) -> None:
    url = f"/admin/tenants/{tenant.tenant_id}"
    before = (await admin.get(url)).json()
    # Every bad field comes with a good one, which must not be applied either.
    response = await admin.patch(url, json={"max_concurrent": 5, **body})
    message = assert_error(response, 400, "invalid_request_error")
    assert message.startswith(f"{field}:")
    assert (await admin.get(url)).json() == before


@pytest.mark.parametrize("raw", [b'{"monthly_budget_usd": NaN}', b'{"rpm_limit": Infinity}'])
async def test_patch_rejects_non_finite_json_numbers(
    admin: httpx.AsyncClient, tenant: TenantKey, raw: bytes
) -> None:
    response = await admin.patch(
        f"/admin/tenants/{tenant.tenant_id}",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400, "invalid_request_error")


async def test_suspending_a_tenant_refuses_its_key_and_reactivating_restores_it(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    url = f"/admin/tenants/{tenant.tenant_id}"
    suspended = await admin.patch(url, json={"status": "suspended"})
    assert suspended.json()["status"] == "suspended"
    with pytest.raises(anthropic.PermissionDeniedError):
        await sdk(admin_gateway, tenant.key).messages.create(
            model=MODEL, max_tokens=5, messages=MESSAGES
        )
    usage = await admin.get("/v1/usage", headers={"authorization": f"Bearer {tenant.key}"})
    assert_error(usage, 403, "permission_error")

    assert (await admin.patch(url, json={"status": "active"})).json()["status"] == "active"
    reply = await sdk(admin_gateway, tenant.key).messages.create(
        model=MODEL, max_tokens=5, messages=MESSAGES
    )
    assert reply.usage.output_tokens > 0


async def test_a_budget_override_of_zero_refuses_requests_with_402(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    await admin.patch(f"/admin/tenants/{tenant.tenant_id}", json={"monthly_budget_usd": "0"})
    with pytest.raises(anthropic.APIStatusError) as refused:
        await sdk(admin_gateway, tenant.key).messages.create(
            model=MODEL, max_tokens=5, messages=MESSAGES
        )
    assert refused.value.status_code == 402
    assert refused.value.response.headers["tollgate-budget-limit-usd"] == "0"
