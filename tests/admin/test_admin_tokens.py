"""Named admin tokens: created once (stored hashed), an `admin` token may change things and a
`viewer` only read (403 on every write), a revoked token stops at once, and the bootstrap
token keeps working and creating them."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.admin.helpers import assert_error
from tests.admin.test_admin_auth import ADMIN_ROUTES, _url
from tests.support import Gateway, TenantKey

WRITES = [(m, p, b) for m, p, b in ADMIN_ROUTES if m not in ("GET", "HEAD")]
READS = [(m, p, b) for m, p, b in ADMIN_ROUTES if m == "GET"]


async def _token(admin: httpx.AsyncClient, name: str, role: str) -> dict[str, Any]:
    created = await admin.post("/admin/tokens", json={"name": name, "role": role})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def _as(gateway: Gateway, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=gateway.url, headers={"authorization": f"Bearer {token}"})


async def test_a_token_is_shown_once_and_stored_only_hashed(
    admin: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    body = await _token(admin, "ci-deployer", "admin")
    assert body["token"].startswith("tg_admin_") and body["role"] == "admin"
    listed = (await admin.get("/admin/tokens")).json()["data"]
    assert [t["name"] for t in listed] == ["ci-deployer"]
    assert "token" not in listed[0] and listed[0]["prefix"] == body["token"][:15]
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM admin_tokens"))).mappings().one()
    assert bytes(row["token_hash"]) == hashlib.sha256(body["token"].encode()).digest()
    assert body["token"] not in str(dict(row))
    again = await admin.post("/admin/tokens", json={"name": "ci-deployer"})
    assert_error(again, 409, "invalid_request_error")


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
async def test_a_viewer_gets_403_on_every_write(
    admin_gateway: Gateway,
    admin: httpx.AsyncClient,
    tenant: TenantKey,
    engine: AsyncEngine,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    viewer = await _token(admin, "auditor", "viewer")
    async with _as(admin_gateway, viewer["token"]) as http:
        response = await http.request(method, _url(path, tenant), json=body)
    message = assert_error(response, 403, "permission_error")
    assert "viewer" in message
    async with engine.connect() as conn:
        changes = (await conn.execute(text("SELECT action FROM audit_log"))).scalars().all()
    assert changes == ["admin_token.create"]  # only the viewer's own creation


@pytest.mark.parametrize(("method", "path", "body"), READS, ids=[f"{m} {p}" for m, p, _ in READS])
async def test_a_viewer_reads_everything(
    admin_gateway: Gateway,
    admin: httpx.AsyncClient,
    tenant: TenantKey,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    viewer = await _token(admin, "auditor", "viewer")
    async with _as(admin_gateway, viewer["token"]) as http:
        response = await http.request(method, _url(path, tenant))
    assert response.status_code == 200, response.text


async def test_an_admin_token_writes_and_is_named_in_the_audit_log(
    admin_gateway: Gateway, admin: httpx.AsyncClient
) -> None:
    ops = await _token(admin, "ops-alice", "admin")
    async with _as(admin_gateway, ops["token"]) as http:
        created = await http.post("/admin/tenants", json={"name": "globex"})
        assert created.status_code == 201, created.text
        entries = (await http.get("/admin/audit", params={"action": "tenant.create"})).json()
    [entry] = entries["data"]
    assert entry["actor"] == "ops-alice" and entry["target_id"] == created.json()["id"]
    assert entry["request_id"] == created.headers["x-tollgate-request-id"]


async def test_a_revoked_token_is_refused_at_once(
    admin_gateway: Gateway, admin: httpx.AsyncClient
) -> None:
    ops = await _token(admin, "temp", "admin")
    async with _as(admin_gateway, ops["token"]) as http:
        assert (await http.get("/admin/tenants")).status_code == 200
        revoked = await admin.delete(f"/admin/tokens/{ops['id']}")
        assert revoked.status_code == 204
        assert_error(await http.get("/admin/tenants"), 401, "authentication_error")
    again = await admin.delete(f"/admin/tokens/{ops['id']}")
    assert_error(again, 409, "invalid_request_error")
    listed = (await admin.get("/admin/tokens")).json()["data"]
    assert listed[0]["revoked_at"] is not None


async def test_a_named_token_works_without_a_bootstrap_token(
    gateway_factory: Any, admin: httpx.AsyncClient
) -> None:
    ops = await _token(admin, "after-bootstrap", "viewer")
    gateway = gateway_factory()  # no TOLLGATE_ADMIN_TOKEN
    async with _as(gateway, ops["token"]) as http:
        assert (await http.get("/admin/tenants")).status_code == 200
        assert_error(await http.post("/admin/tenants", json={"name": "x"}), 403, "permission_error")
    async with _as(gateway, "tg_admin_" + "x" * 43) as http:
        assert_error(await http.get("/admin/tenants"), 401, "authentication_error")
