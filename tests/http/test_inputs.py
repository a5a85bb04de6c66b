"""No 500 and no silent default from client input (issue 10, defects 5, 7 and 11): each body
below used to crash, mis-bill or be accepted; each is now a 400 naming the problem, and
nothing reaches the upstream or the ledger."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.http.conftest import ADMIN_TOKEN
from tests.support import Gateway, TenantKey, ledger_rows

MESSAGES = [{"role": "user", "content": "hi"}]


def _message(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": MESSAGES, **fields}


async def _post(gateway: Gateway, path: str, key: str, content: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
        return await client.post(
            path, content=content, headers={"x-api-key": key, "content-type": "application/json"}
        )


def _message_of(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    message: str = body["error"]["message"]
    return message


async def test_duplicate_keys_are_refused_not_billed_as_the_last_one(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    # The example: Python's json keeps the last key, the upstream may honour the first.
    raw = (
        b'{"model":"claude-opus-4-6","max_tokens":20000,'
        b'"messages":[{"role":"user","content":"hi"}],'
        b'"model":"claude-3-5-haiku-20241022","max_tokens":8}'
    )
    message = _message_of(await _post(gateway, "/v1/messages", tenant.key, raw))
    assert "duplicate key 'model'" in message
    nested = (
        b'{"model":"claude-haiku-4-5","max_tokens":8,"messages":[{"role":"user",'
        b'"content":"a","content":"b"}]}'
    )
    assert "duplicate key" in _message_of(await _post(gateway, "/v1/messages", tenant.key, nested))
    assert await ledger_rows(engine) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_tokens": 10**24}, "max_tokens"),
        ({"tools": 7}, "tools"),
        ({"tools": "web"}, "tools"),
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 10**30}]},
            "tools",
        ),
        ({"metadata": {"user_id": "bad\x00user"}}, "metadata.user_id"),
        ({"metadata": {"user_id": "bad\ud800user"}}, "metadata.user_id"),
        ({"metadata": "alice"}, "metadata"),
    ],
)
async def test_bad_messages_fields_are_400s_naming_the_field(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine, body: dict[str, Any], field: str
) -> None:
    import json

    raw = json.dumps(_message(**body)).encode()
    assert _message_of(await _post(gateway, "/v1/messages", tenant.key, raw)).startswith(field)
    assert await ledger_rows(engine) == []


async def test_deep_nesting_is_a_400(gateway: Gateway, tenant: TenantKey) -> None:
    raw = b'{"model":"claude-haiku-4-5","max_tokens":8,"messages":' + b"[" * 100_000
    raw += b"]" * 100_000 + b"}"
    assert "nested" in _message_of(await _post(gateway, "/v1/messages", tenant.key, raw))
    chat = b'{"message":"hi","system":' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert "nested" in _message_of(await _post(gateway, "/chat", tenant.key, chat))


async def test_an_unknown_model_is_echoed_only_in_part(gateway: Gateway, tenant: TenantKey) -> None:
    import json

    raw = json.dumps(_message(model="m" * 100_000)).encode()
    response = await _post(gateway, "/v1/messages", tenant.key, raw)
    assert response.status_code in (400, 404)
    assert len(response.content) < 2000


@pytest.mark.parametrize("model", [[], 0, {}, False, ""])
async def test_chat_with_a_non_string_model_is_a_400_not_the_default(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine, model: object
) -> None:
    import json

    raw = json.dumps({"message": "hi", "model": model}).encode()
    assert _message_of(await _post(gateway, "/chat", tenant.key, raw)).startswith("model")
    assert await ledger_rows(engine) == []


@pytest.mark.parametrize("user", ["a\x00b", "a\ud800b", "tab\there", "x" * 257])
async def test_chat_user_ids_follow_the_rules(
    gateway: Gateway, tenant: TenantKey, user: str
) -> None:
    import json

    raw = json.dumps({"message": "hi", "user": user}).encode()
    assert _message_of(await _post(gateway, "/chat", tenant.key, raw)).startswith("user")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/admin/tenants", {"name": "acme\x00"}, "name"),
        ("/admin/tenants", {"name": "line\nbreak"}, "name"),
        ("/admin/tenants", {"name": "n" * 300}, "name"),
        ("KEYS", {"name": "k\x00"}, "name"),
        ("KEYS", {"user": "u\x00"}, "user"),
        ("KEYS", {"user": "u\ud800"}, "user"),
    ],
)
async def test_admin_names_and_users_are_clean_text(
    admin_gateway: Gateway, path: str, body: dict[str, Any], field: str
) -> None:
    import json

    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=admin_gateway.url, headers=headers) as client:
        created = await client.post("/admin/tenants", json={"name": "owner"})
        if path == "KEYS":
            path = f"/admin/tenants/{created.json()['id']}/keys"
        response = await client.post(path, content=json.dumps(body).encode())
    assert _message_of(response).startswith(field)


async def test_admin_bodies_refuse_duplicate_keys(admin_gateway: Gateway) -> None:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=admin_gateway.url, headers=headers) as client:
        response = await client.post(
            "/admin/tenants", content=b'{"name":"a","plan":"pro","plan":"free"}'
        )
    assert "duplicate key 'plan'" in _message_of(response)
