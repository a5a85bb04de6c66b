"""Key policies, each enforced on every request and each with its refusal: expiry (401), a
model allow-list with patterns (403), a monthly budget (402); PATCH sets and clears them;
rotation gives a new key and keeps the old one working until its `revoke_at`, then 401."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import httpx
import pytest

from tests.admin.helpers import MESSAGES, MODEL, assert_error, sdk
from tests.support import Gateway, TenantKey, wait_until

SONNET = "claude-sonnet-4-5"


async def _key(admin: httpx.AsyncClient, tenant: TenantKey, **policies: Any) -> dict[str, Any]:
    created = await admin.post(f"/admin/tenants/{tenant.tenant_id}/keys", json=policies)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def _ask(gateway: Gateway, key: str, model: str = MODEL) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        return await http.post(
            "/v1/messages",
            headers={"x-api-key": key},
            json={"model": model, "max_tokens": 5, "messages": MESSAGES},
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


async def test_an_expired_key_is_401_and_says_when(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    past = await _key(admin, tenant, expires_at="2020-01-01T00:00:00Z")
    message = assert_error(await _ask(admin_gateway, past["key"]), 401, "authentication_error")
    assert "expired at 2020-01-01T00:00:00" in message
    future = await _key(admin, tenant, expires_at=_iso(datetime.now(UTC) + timedelta(days=1)))
    assert (await _ask(admin_gateway, future["key"])).status_code == 200


async def test_a_key_expiring_soon_stops_at_its_time(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    soon = await _key(admin, tenant, expires_at=_iso(datetime.now(UTC) + timedelta(seconds=3)))
    assert (await _ask(admin_gateway, soon["key"])).status_code == 200  # cached from here on

    async def refused() -> bool:
        return (await _ask(admin_gateway, soon["key"])).status_code == 401

    await wait_until(refused, timeout_s=30, interval_s=0.5)


async def test_allowed_models_patterns_are_403_outside_and_shape_v1_models(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    haiku_only = await _key(admin, tenant, allowed_models=["claude-haiku-*"])
    assert (await _ask(admin_gateway, haiku_only["key"])).status_code == 200
    refused = await _ask(admin_gateway, haiku_only["key"], SONNET)
    assert "not allowed for this API key" in assert_error(refused, 403, "permission_error")
    with pytest.raises(anthropic.PermissionDeniedError):
        await sdk(admin_gateway, haiku_only["key"]).messages.count_tokens(
            model=SONNET, messages=MESSAGES
        )
    async with httpx.AsyncClient(base_url=admin_gateway.url) as http:
        listed = await http.get("/v1/models", headers={"x-api-key": haiku_only["key"]})
    ids = [m["id"] for m in listed.json()["data"]]
    assert ids and all(i.startswith("claude-haiku-") for i in ids)
    # the tenant's other key is not limited
    assert (await _ask(admin_gateway, tenant.key, SONNET)).status_code == 200


async def test_a_key_budget_is_402_once_spent(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    tiny = await _key(admin, tenant, monthly_budget_usd="0.000001")
    message = assert_error(await _ask(admin_gateway, tiny["key"]), 402, "billing_error")
    assert "API key's monthly budget of $0.000001" in message
    assert (await _ask(admin_gateway, tenant.key)).status_code == 200  # the tenant is fine
    raised = await admin.patch(f"/admin/keys/{tiny['id']}", json={"monthly_budget_usd": "5"})
    assert raised.status_code == 200 and raised.json()["monthly_budget_usd"] == "5"
    assert (await _ask(admin_gateway, tiny["key"])).status_code == 200  # read from the database


async def test_patch_sets_and_clears_policies_and_lists_them(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    key = await _key(admin, tenant)
    body = {
        "expires_at": "2030-01-01T00:00:00Z",
        "allowed_models": ["claude-haiku-*", "claude-sonnet-4-5"],
        "monthly_budget_usd": "12.5",
    }
    patched = await admin.patch(f"/admin/keys/{key['id']}", json=body)
    assert patched.status_code == 200, patched.text
    listed = (await admin.get(f"/admin/tenants/{tenant.tenant_id}/keys")).json()["data"]
    [row] = [k for k in listed if k["id"] == key["id"]]
    assert row["allowed_models"] == body["allowed_models"]
    assert row["monthly_budget_usd"] == "12.5"
    assert datetime.fromisoformat(row["expires_at"]) == datetime(2030, 1, 1, tzinfo=UTC)
    cleared = await admin.patch(f"/admin/keys/{key['id']}", json={"allowed_models": None})
    assert cleared.json()["allowed_models"] is None
    assert cleared.json()["monthly_budget_usd"] == "12.5"  # absent: left alone


@pytest.mark.parametrize(
    "body",
    [
        {"expires_at": "2030-01-01T00:00:00"},  # no time zone
        {"allowed_models": "claude-haiku-*"},  # not a list
        {"allowed_models": [""]},
        {"monthly_budget_usd": "-1"},
        {"colour": "red"},
    ],
)
async def test_bad_policies_are_400(
    admin: httpx.AsyncClient, tenant: TenantKey, body: dict[str, Any]
) -> None:
    response = await admin.patch(f"/admin/keys/{tenant.key_id}", json=body)
    assert_error(response, 400, "invalid_request_error")


async def test_a_revoked_key_cannot_be_patched_or_rotated(
    admin: httpx.AsyncClient, tenant: TenantKey
) -> None:
    assert (await admin.delete(f"/admin/keys/{tenant.key_id}")).status_code == 204
    patch = await admin.patch(f"/admin/keys/{tenant.key_id}", json={"monthly_budget_usd": "1"})
    assert_error(patch, 409, "invalid_request_error")
    rotate = await admin.post(f"/admin/keys/{tenant.key_id}/rotate", json={})
    assert_error(rotate, 409, "invalid_request_error")


async def test_rotation_keeps_both_keys_valid_until_revoke_at(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    await admin.patch(f"/admin/keys/{tenant.key_id}", json={"allowed_models": ["claude-haiku-*"]})
    revoke_at = datetime.now(UTC) + timedelta(seconds=4)
    rotated = await admin.post(
        f"/admin/keys/{tenant.key_id}/rotate", json={"revoke_at": _iso(revoke_at)}
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["old_key_id"] == str(tenant.key_id) and new["key"].startswith(new["prefix"])
    assert (await _ask(admin_gateway, new["key"])).status_code == 200
    assert (await _ask(admin_gateway, tenant.key)).status_code == 200  # still valid meanwhile
    listed = (await admin.get(f"/admin/tenants/{tenant.tenant_id}/keys")).json()["data"]
    by_id = {k["id"]: k for k in listed}
    assert by_id[new["id"]]["allowed_models"] == ["claude-haiku-*"]  # same policies
    assert by_id[new["id"]]["name"] == "test"
    assert datetime.fromisoformat(by_id[str(tenant.key_id)]["revoked_at"]) == revoke_at

    async def old_refused() -> bool:
        return (await _ask(admin_gateway, tenant.key)).status_code == 401

    await wait_until(old_refused, timeout_s=30, interval_s=0.5)
    assert (await _ask(admin_gateway, new["key"])).status_code == 200
    entries = (await admin.get("/admin/audit", params={"action": "key.rotate"})).json()["data"]
    assert entries[0]["target_id"] == str(tenant.key_id)


async def test_a_key_with_a_budget_cannot_submit_batches(
    admin: httpx.AsyncClient, admin_gateway: Gateway, tenant: TenantKey
) -> None:
    capped = await _key(admin, tenant, monthly_budget_usd="5")
    request = {"custom_id": "a", "params": {"model": MODEL, "max_tokens": 5, "messages": MESSAGES}}
    async with httpx.AsyncClient(base_url=admin_gateway.url) as http:
        response = await http.post(
            "/v1/messages/batches",
            headers={"x-api-key": capped["key"]},
            json={"requests": [request]},
        )
    assert "monthly budget" in assert_error(response, 403, "permission_error")
