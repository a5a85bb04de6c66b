"""The audit log: append-only in the database itself (an UPDATE, DELETE or TRUNCATE fails, even
for the owning role), filterable through `GET /admin/audit`, and written by the CLI too."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.admin.helpers import assert_error
from tests.pg import asyncpg_dsn
from tests.test_cli import tollgate


async def _entries(admin: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await admin.get("/admin/audit", params=params)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone-else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ],
)
async def test_the_log_cannot_be_edited_or_erased(
    admin: httpx.AsyncClient, engine: AsyncEngine, statement: str
) -> None:
    assert (await admin.post("/admin/tenants", json={"name": "acme"})).status_code == 201
    async with engine.connect() as conn:
        with pytest.raises(DBAPIError, match="append-only"):
            await conn.execute(text(statement))
        await conn.rollback()
        rows = (await conn.execute(text("SELECT actor FROM audit_log"))).scalars().all()
    assert rows == ["bootstrap"]


async def test_public_has_no_update_delete_or_truncate_grant(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        acl = (
            await conn.execute(
                text("SELECT relacl::text FROM pg_class WHERE relname = 'audit_log'")
            )
        ).scalar_one()
        granted = (
            (
                await conn.execute(
                    text(
                        "SELECT has_table_privilege('public', 'audit_log', p) "
                        "FROM unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE']) AS p"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert acl is not None and granted == [False, False, False]


async def test_entries_record_before_after_and_filter(admin: httpx.AsyncClient) -> None:
    tenant = (await admin.post("/admin/tenants", json={"name": "acme"})).json()
    patched = await admin.patch(f"/admin/tenants/{tenant['id']}", json={"rpm_limit": 7})
    assert patched.status_code == 200
    await admin.post("/admin/tenants", json={"name": "globex"})
    updates = await _entries(admin, action="tenant.update")
    assert len(updates) == 1
    [update] = updates
    assert update["before"]["overrides"]["rpm_limit"] is None
    assert update["after"]["overrides"]["rpm_limit"] == 7
    assert update["target_type"] == "tenant" and update["target_id"] == tenant["id"]
    assert update["request_id"] == patched.headers["x-tollgate-request-id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", update["at"])
    on_acme = await _entries(admin, target_id=tenant["id"])
    assert [e["action"] for e in on_acme] == ["tenant.update", "tenant.create"]  # newest first
    assert len(await _entries(admin, actor="bootstrap")) == 3
    assert await _entries(admin, actor="nobody") == []
    assert await _entries(admin, **{"from": "2999-01-01"}) == []
    assert len(await _entries(admin, to="2999-01-01", limit="2")) == 2
    newest = (await _entries(admin))[0]["id"]
    assert len(await _entries(admin, before_id=str(newest))) == 2


@pytest.mark.parametrize(
    "params",
    [{"from": "yesterday"}, {"limit": "0"}, {"limit": "1001"}, {"colour": "red"}],
)
async def test_bad_filters_are_400(admin: httpx.AsyncClient, params: dict[str, str]) -> None:
    assert_error(await admin.get("/admin/audit", params=params), 400, "invalid_request_error")


async def test_cli_changes_are_recorded(database_url: str, engine: AsyncEngine) -> None:
    env = {"DATABASE_URL": asyncpg_dsn(database_url)}
    tenant_id = tollgate("tenant", "create", "Acme", env=env).stdout.strip()
    key = tollgate("key", "create", tenant_id, env=env)
    key_id = re.search(r"key id: (\S+)", key.stdout)
    assert key_id, key.stdout + key.stderr
    assert tollgate("key", "revoke", key_id.group(1), env=env).returncode == 0
    token = tollgate("admin-token", "create", "ops", "--role", "viewer", env=env)
    assert token.returncode == 0, token.stderr
    token_id = re.search(r"token id: (\S+)", token.stdout)
    assert token_id and "tg_admin_" in token.stdout
    listed = tollgate("admin-token", "list", env=env)
    assert "ops" in listed.stdout and "viewer" in listed.stdout and "tg_admin_" in listed.stdout
    assert tollgate("admin-token", "revoke", token_id.group(1), env=env).returncode == 0
    async with engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT actor, action, target_id FROM audit_log ORDER BY id"))
        ).all()
    assert [r.action for r in rows] == [
        "tenant.create",
        "key.create",
        "key.revoke",
        "admin_token.create",
        "admin_token.revoke",
    ]
    assert all(r.actor.startswith("cli:") for r in rows)
    assert rows[0].target_id == tenant_id and rows[1].target_id == key_id.group(1)
