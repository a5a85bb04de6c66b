"""/v1/messages through the official SDK: the stream is relayed unchanged and the ledger
records exactly what the SDK saw."""

from __future__ import annotations

from decimal import Decimal

import anthropic
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Gateway, TenantKey, ledger_rows, settled_rows

MODEL = "claude-sonnet-4-6"
MESSAGES = [{"role": "user", "content": "Hello, Claude"}]


def client(gateway: Gateway, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0)


async def test_sdk_stream_usage_equals_the_ledger_row(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    async with client(gateway, tenant.key).messages.stream(
        model=MODEL, max_tokens=100, messages=MESSAGES
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert len(text) > 0
    assert final.usage.output_tokens == 64
    [row] = await settled_rows(engine, 1)
    assert row["status"] == "ok"
    assert row["tenant_id"] == tenant.tenant_id and row["api_key_id"] == tenant.key_id
    assert row["input_tokens"] == final.usage.input_tokens
    assert row["output_tokens"] == final.usage.output_tokens
    # Sonnet 4.6: $3/M input, $15/M output.
    expected = Decimal(final.usage.input_tokens) * 3 / 10**6 + Decimal(64) * 15 / 10**6
    assert row["cost_usd"] == expected
    assert row["first_token_at"] is not None and row["ended_at"] >= row["first_token_at"]
    assert row["upstream_request_id"].startswith("req_")


async def test_raw_stream_is_relayed_byte_for_byte(
    gateway: Gateway, tenant: TenantKey, simulator: str
) -> None:
    body = {"model": MODEL, "max_tokens": 50, "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient() as http:
        direct = await http.post(
            simulator + "/v1/messages", json=body, headers={"x-api-key": "sim"}
        )
        via = await http.post(
            gateway.url + "/v1/messages", json=body, headers={"x-api-key": tenant.key}
        )
    assert via.status_code == 200
    strip = lambda s: s.replace(b'"msg_sim_', b"").split(b"\n")  # noqa: E731
    # Everything but the random message id is identical.
    direct_lines = [ln for ln in strip(direct.content) if b"message_start" not in ln]
    via_lines = [ln for ln in strip(via.content) if b"message_start" not in ln]
    assert via_lines == direct_lines
    assert via.headers["cache-control"] == "no-cache, no-transform"
    assert via.headers["x-accel-buffering"] == "no"
    assert via.headers["x-tollgate-request-id"]
    assert via.headers["request-id"].startswith("req_")


async def test_create_stream_true_and_non_streaming_both_metered(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    c = client(gateway, tenant.key)
    events = [
        e.type
        async for e in await c.messages.create(
            model=MODEL, max_tokens=10, messages=MESSAGES, stream=True
        )
    ]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    message = await c.messages.create(
        model=MODEL, max_tokens=10, messages=MESSAGES, metadata={"user_id": "alice"}
    )
    assert message.usage.output_tokens == 10
    rows = await settled_rows(engine, 2)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert [r["output_tokens"] for r in rows] == [10, 10]
    assert rows[0]["end_user_id"] is None and rows[1]["end_user_id"] is not None


async def test_count_tokens_is_forwarded_and_not_billed(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    result = await client(gateway, tenant.key).messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert result.input_tokens > 0
    assert await ledger_rows(engine) == []


async def test_bearer_and_x_api_key_both_authenticate(gateway: Gateway, tenant: TenantKey) -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": MESSAGES}
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        a = await http.post("/v1/messages", json=body, headers={"x-api-key": tenant.key})
        b = await http.post(
            "/v1/messages", json=body, headers={"authorization": f"Bearer {tenant.key}"}
        )
    assert a.status_code == b.status_code == 200


async def test_anthropic_beta_header_passes_through(gateway: Gateway, tenant: TenantKey) -> None:
    c = client(gateway, tenant.key)
    message = await c.messages.create(
        model=MODEL,
        max_tokens=5,
        messages=MESSAGES,
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    assert message.type == "message"


@pytest.mark.parametrize(
    ("body", "status", "error_type", "fragment"),
    [
        (b"{not json", 400, "invalid_request_error", "not valid JSON"),
        (b"[1, 2]", 400, "invalid_request_error", "JSON object"),
        (
            b'{"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "x"}]}',
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (
            b'{"model": "claude-nope-1", "max_tokens": 5, '
            b'"messages": [{"role": "user", "content": "x"}]}',
            404,
            "not_found_error",
            "claude-nope-1",
        ),
    ],
)
async def test_bad_requests_are_refused_before_anything_is_spent(
    gateway: Gateway,
    tenant: TenantKey,
    engine: AsyncEngine,
    body: bytes,
    status: int,
    error_type: str,
    fragment: str,
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(
            "/v1/messages",
            content=body,
            headers={"x-api-key": tenant.key, "content-type": "application/json"},
        )
    assert response.status_code == status
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == error_type
    assert fragment in error["error"]["message"]
    assert await ledger_rows(engine) == []


async def test_ten_megabyte_body_gets_413(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    big = (
        b'{"model": "claude-sonnet-4-6", "max_tokens": 5, '
        b'"messages": [{"role": "user", "content": "' + b"a" * (10 * 1024 * 1024) + b'"}]}'
    )
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post("/v1/messages", content=big, headers={"x-api-key": tenant.key})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
    assert await ledger_rows(engine) == []
