"""Only the admin token opens `/admin/*`: not a missing or wrong token, not a tenant's key, and
nothing at all while no admin token is configured."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth.admin import token_matches
from api.db.models import ApiKey, EndUser, Plan, Tenant
from api.main import create_app
from tests.admin.helpers import ADMIN_TOKEN, assert_error
from tests.support import Gateway, TenantKey, gateway_settings

# Every admin route, with a body that the admin token would get accepted.
ADMIN_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/admin/tenants", {"name": "intruder"}),
    ("GET", "/admin/tenants", None),
    ("GET", "/admin/tenants/{tenant_id}", None),
    ("PATCH", "/admin/tenants/{tenant_id}", {"status": "suspended", "rpm_limit": 1}),
    ("POST", "/admin/tenants/{tenant_id}/keys", {"name": "stolen"}),
    ("GET", "/admin/tenants/{tenant_id}/keys", None),
    ("DELETE", "/admin/keys/{key_id}", None),
    ("PATCH", "/admin/keys/{key_id}", {"monthly_budget_usd": "0"}),
    ("POST", "/admin/keys/{key_id}/rotate", {}),
    ("PUT", "/admin/tenants/{tenant_id}/users/{user}/limit", {"monthly_budget_usd": "999"}),
    ("PUT", "/admin/plans/{code}", {"monthly_budget_usd": "999999"}),
    ("POST", "/admin/tenants/{tenant_id}/subscription", {"plan": "pro"}),
    ("GET", "/admin/usage", None),
    ("GET", "/admin/prices", None),
    ("PUT", "/admin/prices/{model}", {"input": "0", "output": "0"}),
    ("POST", "/admin/prices/{model}/recost", {"from": "2026-01-01", "to": "2026-02-01"}),
    ("GET", "/admin/plans", None),
    ("GET", "/admin/whoami", None),
    ("GET", "/admin/tenants/{tenant_id}/users", None),
    ("GET", "/admin/billing/inbox", None),
    ("GET", "/admin/audit", None),
    ("PUT", "/admin/tenants/{tenant_id}/alerts", {"url": "http://127.0.0.1:9/hook"}),
    ("GET", "/admin/tenants/{tenant_id}/alerts", None),
    ("GET", "/admin/tenants/{tenant_id}/alerts/deliveries", None),
    ("GET", "/admin/tokens", None),
    ("POST", "/admin/tokens", {"name": "intruder"}),
    ("DELETE", "/admin/tokens/{token_id}", None),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ADMIN_ROUTES]


def _url(path: str, tenant: TenantKey) -> str:
    return path.format(
        tenant_id=tenant.tenant_id,
        key_id=tenant.key_id,
        user="alice",
        code="pro",
        model="claude-haiku-4-5",
        token_id=uuid.uuid4(),
    )


async def _call(
    gateway: Gateway,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        return await http.request(method, path, json=body, headers=headers)


def test_the_route_list_covers_every_admin_route(tmp_path: Any) -> None:
    app = create_app(gateway_settings(tmp_path, "http://127.0.0.1:1"), "postgresql+asyncpg://x/y")
    served = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/admin")
        for method in operations
    }
    assert served == {(method, path) for method, path, _ in ADMIN_ROUTES}


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("header", ["authorization", "x-api-key"])
async def test_a_tenant_key_opens_no_admin_route(
    admin_gateway: Gateway,
    tenant: TenantKey,
    sessions: async_sessionmaker[AsyncSession],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    header: str,
) -> None:
    value = f"Bearer {tenant.key}" if header == "authorization" else tenant.key
    response = await _call(admin_gateway, method, _url(path, tenant), body, {header: value})
    assert_error(response, 401, "authentication_error")
    async with sessions() as session:
        row = await session.get(Tenant, tenant.tenant_id)
        key = await session.get(ApiKey, tenant.key_id)
        plan = await session.get(Plan, "pro")
        tenants = (await session.execute(Tenant.__table__.select())).all()
        users = (await session.execute(EndUser.__table__.select())).all()
    assert row is not None and row.status == "active" and row.rpm_limit is None
    assert key is not None and key.revoked_at is None
    assert plan is not None and plan.monthly_budget_usd == 100
    assert len(tenants) == 1 and users == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-token"},
        {"authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"authorization": f"Basic {ADMIN_TOKEN}"},
        {"authorization": ADMIN_TOKEN},
        {"authorization": "Bearer"},
        {"x-api-key": ADMIN_TOKEN},
    ],
    ids=["missing", "wrong", "longer", "basic", "no-scheme", "empty", "x-api-key"],
)
async def test_a_missing_or_wrong_admin_token_gets_401(
    admin_gateway: Gateway, headers: dict[str, str]
) -> None:
    response = await _call(admin_gateway, "GET", "/admin/tenants", None, headers)
    message = assert_error(response, 401, "authentication_error")
    assert "admin token" in message
    assert ADMIN_TOKEN not in response.text
    assert response.headers["www-authenticate"] == "Bearer"


async def test_the_admin_token_is_accepted_whatever_the_scheme_case(
    admin_gateway: Gateway,
) -> None:
    headers = {"authorization": f"bearer {ADMIN_TOKEN}"}
    response = await _call(admin_gateway, "GET", "/admin/tenants", None, headers)
    assert response.status_code == 200
    assert response.json() == []


async def test_authentication_comes_before_body_validation(admin_gateway: Gateway) -> None:
    headers = {"authorization": "Bearer wrong"}
    response = await _call(admin_gateway, "POST", "/admin/tenants", {"name": 42}, headers)
    assert_error(response, 401, "authentication_error")
    bad_id = await _call(admin_gateway, "GET", "/admin/tenants/not-a-uuid", None, headers)
    assert_error(bad_id, 401, "authentication_error")


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES, ids=ROUTE_IDS)
async def test_every_admin_route_is_403_while_no_admin_token_is_set(
    gateway_factory: Callable[..., Gateway],
    tenant: TenantKey,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    gateway = gateway_factory()  # no TOLLGATE_ADMIN_TOKEN
    for headers in ({}, {"authorization": f"Bearer {ADMIN_TOKEN}"}):
        response = await _call(gateway, method, _url(path, tenant), body, headers)
        message = assert_error(response, 403, "permission_error")
        assert message == "admin API disabled: set TOLLGATE_ADMIN_TOKEN"


def test_token_comparison_is_exact() -> None:
    assert token_matches(ADMIN_TOKEN, ADMIN_TOKEN)
    assert not token_matches(ADMIN_TOKEN[:-1], ADMIN_TOKEN)
    assert not token_matches("", ADMIN_TOKEN)
    assert not token_matches(str(uuid.uuid4()), ADMIN_TOKEN)
