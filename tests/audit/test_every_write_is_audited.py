"""Every admin route that writes (POST/PUT/PATCH/DELETE), found by walking the app's route
table, leaves an audit entry carrying its request id. A new write route without a recipe here
fails the walk: add one, and make the route record its change."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.main import create_app
from tests.billing.conftest import ADMIN, KEY_ID, KEY_SECRET, billing_settings, subscribe
from tests.fakes.razorpay import FakeRazorpay, start_fake_razorpay
from tests.support import Gateway, gateway_settings, walk_routes

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _write_routes() -> set[tuple[str, str]]:
    settings = gateway_settings(Path(tempfile.mkdtemp()), "http://127.0.0.1:1")
    app = create_app(settings, "postgresql+asyncpg://x/y")
    routes = set(walk_routes(app.routes))
    assert ("GET", "/admin/tenants") in routes  # the walk finds the admin routes at all
    return {(m, p) for m, p in routes if p.startswith("/admin") and m in WRITES}


async def _setup(admin: httpx.AsyncClient) -> dict[str, str]:
    tenant = (await admin.post("/admin/tenants", json={"name": f"t-{uuid.uuid4().hex[:6]}"})).json()
    key = (await admin.post(f"/admin/tenants/{tenant['id']}/keys", json={})).json()
    token = (await admin.post("/admin/tokens", json={"name": uuid.uuid4().hex[:8]})).json()
    return {"tenant_id": tenant["id"], "key_id": key["id"], "token_id": token["id"]}


RECIPES: dict[tuple[str, str], tuple[str, dict[str, Any] | None]] = {
    ("POST", "/admin/tenants"): ("/admin/tenants", {"name": "walked"}),
    ("PATCH", "/admin/tenants/{tenant_id}"): ("/admin/tenants/{tenant_id}", {"rpm_limit": 9}),
    ("POST", "/admin/tenants/{tenant_id}/keys"): ("/admin/tenants/{tenant_id}/keys", {}),
    ("DELETE", "/admin/keys/{key_id}"): ("/admin/keys/{key_id}", None),
    ("PATCH", "/admin/keys/{key_id}"): (
        "/admin/keys/{key_id}",
        {"allowed_models": ["claude-haiku-*"], "monthly_budget_usd": "3"},
    ),
    ("POST", "/admin/keys/{key_id}/rotate"): ("/admin/keys/{key_id}/rotate", {}),
    ("PUT", "/admin/tenants/{tenant_id}/users/{user:path}/limit"): (
        "/admin/tenants/{tenant_id}/users/alice/limit",
        {"monthly_budget_usd": "5"},
    ),
    ("PUT", "/admin/plans/{code}"): ("/admin/plans/walk", {"monthly_budget_usd": "10"}),
    ("PUT", "/admin/prices/{model}"): (
        "/admin/prices/claude-walk-1",
        {"input": "1", "output": "2"},
    ),
    ("POST", "/admin/prices/{model}/recost"): (
        "/admin/prices/claude-haiku-4-5/recost",
        {"from": "2026-01-01", "to": "2026-02-01"},
    ),
    ("PUT", "/admin/tenants/{tenant_id}/alerts"): (
        "/admin/tenants/{tenant_id}/alerts",
        {"url": "http://127.0.0.1:9/hook"},
    ),
    ("POST", "/admin/tokens"): ("/admin/tokens", {"name": "walker", "role": "viewer"}),
    ("DELETE", "/admin/tokens/{token_id}"): ("/admin/tokens/{token_id}", None),
    ("POST", "/admin/tenants/{tenant_id}/subscription"): (
        "/admin/tenants/{tenant_id}/subscription",
        {"plan": "pro"},
    ),
}


@pytest.fixture
def fake() -> Iterator[FakeRazorpay]:
    with start_fake_razorpay(KEY_ID, KEY_SECRET) as server:
        yield server


def test_every_write_route_has_a_recipe() -> None:
    missing = _write_routes() - set(RECIPES)
    assert not missing, f"admin write routes without an audit recipe: {sorted(missing)}"


@pytest.mark.parametrize(("method", "path"), sorted(_write_routes()), ids=lambda v: str(v))
async def test_the_write_leaves_an_audit_entry(
    gateway_factory: Callable[..., Gateway],
    fake: FakeRazorpay,
    engine: AsyncEngine,
    method: str,
    path: str,
) -> None:
    assert (method, path) in RECIPES, f"no audit recipe for {method} {path}: add one"
    gateway = gateway_factory(billing=billing_settings(fake), admin_token=ADMIN)
    billed = subscribe(gateway, fake, name="walk-billed")  # a plan with a razorpay_plan_id
    headers = {"authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as admin:
        ids = await _setup(admin)
        if "subscription" in path:  # a tenant without a live subscription
            ids["tenant_id"] = (await admin.post("/admin/tenants", json={"name": "new"})).json()[
                "id"
            ]
        url, body = RECIPES[(method, path)]
        response = await admin.request(method, url.format(**ids), json=body)
    assert response.status_code < 300, response.text
    request_id = response.headers["x-tollgate-request-id"]
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                text("SELECT actor, action FROM audit_log WHERE request_id = :rid"),
                {"rid": request_id},
            )
        ).all()
    assert found, f"{method} {path} changed something without an audit entry"
    assert all(row.actor == "bootstrap" for row in found)
    assert billed.sub_id
