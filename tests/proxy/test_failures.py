"""Every failure leaves exactly one ledger row with the right status, and the client gets a
defined answer."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Gateway, TenantKey, ledger_rows, settled_rows

MODEL = "claude-sonnet-4-6"
BODY = {"model": MODEL, "max_tokens": 40, "messages": [{"role": "user", "content": "hi"}]}


def sdk(gateway: Gateway, key: str, **headers: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=gateway.url, api_key=key, max_retries=0, default_headers=headers
    )


async def test_mid_stream_overloaded_error_is_forwarded_and_recorded(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    client = sdk(gateway, tenant.key, **{"x-sim-fail": "overloaded", "x-sim-fail-after": "5"})
    seen = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        async for event in await client.messages.create(**BODY, stream=True):
            seen.append(event.type)
    assert "overloaded_error" in str(caught.value.body)
    assert seen.count("content_block_delta") == 5
    [row] = await settled_rows(engine, 1)
    assert row["status"] == "upstream_error"
    assert row["error_type"] == "overloaded_error"
    assert row["input_tokens"] > 0  # input was billed from message_start


async def test_truncated_stream_is_incomplete_never_ok(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    client = sdk(gateway, tenant.key, **{"x-sim-fail": "truncate", "x-sim-fail-after": "7"})
    types = [e.type async for e in await client.messages.create(**BODY, stream=True)]
    assert "message_stop" not in types
    [row] = await settled_rows(engine, 1)
    assert row["status"] == "incomplete"
    assert row["output_tokens"] == 7  # counted from the deltas seen


async def test_529_before_the_stream_is_relayed_with_its_body(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(
            "/v1/messages",
            json={**BODY, "stream": True},
            headers={"x-api-key": tenant.key, "x-sim-status": "529"},
        )
    assert response.status_code == 529
    assert response.json()["error"]["type"] == "overloaded_error"
    assert response.headers["request-id"].startswith("req_")
    [row] = await settled_rows(engine, 1)
    assert (row["status"], row["http_status"], row["cost_usd"]) == ("upstream_error", 529, 0)


async def test_first_byte_that_never_comes_gives_504(
    gateway_factory: object, tenant: TenantKey, engine: AsyncEngine
) -> None:
    gateway = gateway_factory(upstream_timeout_s="0.5")  # type: ignore[operator]
    client = sdk(gateway, tenant.key, **{"x-sim-fail": "hang"})
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client.messages.create(**BODY, stream=True)
    assert caught.value.status_code == 504
    assert caught.value.body["error"]["type"] == "timeout_error"  # type: ignore[index]
    [row] = await settled_rows(engine, 1)
    assert row["status"] == "timeout" and row["output_tokens"] == 0


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"x-api-key": "not-a-key"}, 401),
        ({"x-api-key": "tg_live_" + "x" * 43}, 401),
        ({"authorization": "Basic abc"}, 401),
    ],
)
async def test_bad_keys_are_refused_alike(
    gateway: Gateway, engine: AsyncEngine, headers: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post("/v1/messages", json=BODY, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["type"] == "authentication_error"
    assert await ledger_rows(engine) == []
