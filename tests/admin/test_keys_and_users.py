"""Keys made and revoked through the admin API, and per-end-user budgets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

import anthropic
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.db.models import ApiKey, EndUser
from api.keys.secrets import hash_key
from tests.admin.helpers import MESSAGES, MODEL, assert_error, sdk
from tests.support import Gateway, TenantKey, settled_rows, wait_until


async def test_create_key_shows_it_once_and_it_works(
    admin: httpx.AsyncClient,
    admin_gateway: Gateway,
    tenant: TenantKey,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    response = await admin.post(f"/admin/tenants/{tenant.tenant_id}/keys", json={"name": "ci"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "key", "prefix"}
    assert body["key"].startswith("tg_live_") and body["key"].startswith(body["prefix"])
    async with sessions() as session:
        row = await session.get(ApiKey, uuid.UUID(body["id"]))
    assert row is not None and row.tenant_id == tenant.tenant_id and row.name == "ci"
    assert row.key_hash == hash_key(body["key"]) and row.end_user_id is None
    reply = await sdk(admin_gateway, body["key"]).messages.create(
        model=MODEL, max_tokens=5, messages=MESSAGES
    )
    assert reply.usage.output_tokens > 0


async def test_a_key_created_for_a_user_is_bound_to_it(
    admin: httpx.AsyncClient,
    admin_gateway: Gateway,
    tenant: TenantKey,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    response = await admin.post(f"/admin/tenants/{tenant.tenant_id}/keys", json={"user": "bob"})
    assert response.status_code == 201
    key = response.json()["key"]
    await sdk(admin_gateway, key).messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    [row] = await settled_rows(engine, 1)
    async with sessions() as session:
        user = await session.get(EndUser, row["end_user_id"])
    assert user is not None and user.external_id == "bob" and user.tenant_id == tenant.tenant_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": ""}, "user"),
        ({"user": "u" * 257}, "user"),
        ({"user": 5}, "user"),
        ({"name": ""}, "name"),
        ({"name": "n" * 257}, "name"),
        ({"scopes": ["all"]}, "scopes"),
    ],
)
async def test_create_key_rejects_bad_input(
    admin: httpx.AsyncClient,
    tenant: TenantKey,
    sessions: async_sessionmaker[AsyncSession],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await admin.post(f"/admin/tenants/{tenant.tenant_id}/keys", json=body)
    assert assert_error(response, 400, "invalid_request_error").startswith(f"{field}:")
    async with sessions() as session:
        assert len((await session.execute(select(ApiKey))).all()) == 1


async def test_create_key_for_an_unknown_tenant_is_404(admin: httpx.AsyncClient) -> None:
    response = await admin.post(f"/admin/tenants/{uuid.uuid4()}/keys", json={})
    assert_error(response, 404, "not_found_error")


async def test_revoked_key_gets_401_and_revoking_again_says_when(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    client = sdk(admin_gateway, tenant.key)
    await client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    response = await admin.delete(f"/admin/keys/{tenant.key_id}")
    assert response.status_code == 204 and response.content == b""
    with pytest.raises(anthropic.AuthenticationError):
        await client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    usage = await admin.get("/v1/usage", headers={"x-api-key": tenant.key})
    assert_error(usage, 401, "authentication_error")
    again = await admin.delete(f"/admin/keys/{tenant.key_id}")
    message = assert_error(again, 409, "invalid_request_error")
    assert message.startswith(f"key {tenant.key_id} was already revoked at 20")


async def test_list_keys_shows_each_key_without_the_secret(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    bound = await admin.post(
        f"/admin/tenants/{tenant.tenant_id}/keys", json={"name": "ci", "user": "bob"}
    )
    await sdk(admin_gateway, tenant.key).messages.create(
        model=MODEL, max_tokens=5, messages=MESSAGES
    )
    [row] = await settled_rows(engine, 1)
    assert (await admin.delete(f"/admin/keys/{bound.json()['id']}")).status_code == 204

    async def used() -> bool:  # last_used_at is written in batches, every few seconds
        keys = (await admin.get(f"/admin/tenants/{tenant.tenant_id}/keys")).json()["data"]
        return keys[0]["last_used_at"] is not None

    await wait_until(used, timeout_s=30)
    response = await admin.get(f"/admin/tenants/{tenant.tenant_id}/keys")
    assert response.status_code == 200
    first, second = response.json()["data"]  # oldest first
    fields = {
        "id", "prefix", "name", "user", "created_at", "last_used_at", "expires_at",
        "revoked_at", "allowed_models", "monthly_budget_usd",
    }  # fmt: skip
    assert set(first) == set(second) == fields
    assert first["id"] == str(tenant.key_id) and tenant.key.startswith(first["prefix"])
    assert (first["name"], first["user"], first["revoked_at"]) == ("test", None, None)
    last_used = datetime.fromisoformat(first["last_used_at"])  # noted when the key was accepted
    assert datetime.fromisoformat(first["created_at"]) <= last_used <= row["ended_at"]
    assert second["id"] == bound.json()["id"] and second["prefix"] == bound.json()["prefix"]
    assert (second["name"], second["user"], second["last_used_at"]) == ("ci", "bob", None)
    assert datetime.fromisoformat(second["revoked_at"]) >= datetime.fromisoformat(
        second["created_at"]
    )
    text = response.text
    assert tenant.key not in text and bound.json()["key"] not in text
    assert hash_key(tenant.key).hex() not in text


async def test_list_keys_of_an_unknown_tenant_is_404(admin: httpx.AsyncClient) -> None:
    missing = await admin.get(f"/admin/tenants/{uuid.uuid4()}/keys")
    assert_error(missing, 404, "not_found_error")


async def test_revoking_an_unknown_key_is_404(admin: httpx.AsyncClient) -> None:
    assert_error(await admin.delete(f"/admin/keys/{uuid.uuid4()}"), 404, "not_found_error")
    assert_error(await admin.delete("/admin/keys/42"), 400, "invalid_request_error")


async def _user(
    sessions: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, external_id: str
) -> EndUser | None:
    async with sessions() as session:
        stmt = select(EndUser).where(
            EndUser.tenant_id == tenant_id, EndUser.external_id == external_id
        )
        return (await session.execute(stmt)).scalar_one_or_none()


async def test_user_limit_creates_the_user_sets_and_clears_the_budget(
    admin: httpx.AsyncClient, tenant: TenantKey, sessions: async_sessionmaker[AsyncSession]
) -> None:
    url = f"/admin/tenants/{tenant.tenant_id}/users/dave/limit"
    response = await admin.put(url, json={"monthly_budget_usd": "1.50"})
    assert response.status_code == 200
    assert response.json() == {
        "tenant_id": str(tenant.tenant_id),
        "user": "dave",
        "monthly_budget_usd": "1.5",
    }
    user = await _user(sessions, tenant.tenant_id, "dave")
    assert user is not None and user.monthly_budget_usd == 1.5

    cleared = await admin.put(url, json={"monthly_budget_usd": None})
    assert cleared.json()["monthly_budget_usd"] is None
    again = await _user(sessions, tenant.tenant_id, "dave")
    assert again is not None and again.id == user.id and again.monthly_budget_usd is None


async def test_user_ids_with_slashes_and_spaces_round_trip(
    admin: httpx.AsyncClient, tenant: TenantKey, sessions: async_sessionmaker[AsyncSession]
) -> None:
    external = "team/alice smith"
    url = f"/admin/tenants/{tenant.tenant_id}/users/{quote(external, safe='')}/limit"
    response = await admin.put(url, json={"monthly_budget_usd": 2})
    assert response.status_code == 200, response.text
    assert response.json()["user"] == external
    user = await _user(sessions, tenant.tenant_id, external)
    assert user is not None and user.monthly_budget_usd == 2


async def test_a_user_budget_of_zero_refuses_that_user_only(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    url = f"/admin/tenants/{tenant.tenant_id}/users/erin/limit"
    await admin.put(url, json={"monthly_budget_usd": 0})
    client = sdk(admin_gateway, tenant.key)
    with pytest.raises(anthropic.APIStatusError) as refused:
        await client.messages.create(
            model=MODEL, max_tokens=5, messages=MESSAGES, metadata={"user_id": "erin"}
        )
    assert refused.value.status_code == 402
    reply = await client.messages.create(
        model=MODEL, max_tokens=5, messages=MESSAGES, metadata={"user_id": "frank"}
    )
    assert reply.usage.output_tokens > 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "-2"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "lots"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": 1, "extra": 1}, "extra"),
    ],
)
async def test_user_limit_rejects_bad_input(
    admin: httpx.AsyncClient,
    tenant: TenantKey,
    sessions: async_sessionmaker[AsyncSession],
    body: dict[str, Any],
    field: str,
) -> None:
    response = await admin.put(f"/admin/tenants/{tenant.tenant_id}/users/gil/limit", json=body)
    assert assert_error(response, 400, "invalid_request_error").startswith(f"{field}:")
    assert await _user(sessions, tenant.tenant_id, "gil") is None


async def test_user_limit_rejects_a_too_long_user_and_an_unknown_tenant(
    admin: httpx.AsyncClient, tenant: TenantKey
) -> None:
    long_user = await admin.put(
        f"/admin/tenants/{tenant.tenant_id}/users/{'u' * 257}/limit",
        json={"monthly_budget_usd": 1},
    )
    assert assert_error(long_user, 400, "invalid_request_error").startswith("user:")
    unknown = await admin.put(
        f"/admin/tenants/{uuid.uuid4()}/users/gil/limit", json={"monthly_budget_usd": 1}
    )
    assert_error(unknown, 404, "not_found_error")
