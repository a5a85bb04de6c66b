"""/chat: the simple SSE endpoint. Events are parsed as a browser would (per the SSE spec)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from api.metering.sse import SSEScanner
from tests.support import Gateway, TenantKey, settled_rows


async def chat(
    gateway: Gateway, key: str, body: dict[str, Any], **headers: str
) -> list[tuple[str, Any]]:
    scanner = SSEScanner()
    events: list[tuple[str, Any]] = []
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=10) as http,
        http.stream("POST", "/chat", json=body, headers={"x-api-key": key, **headers}) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["cache-control"] == "no-cache, no-transform"
        async for chunk in response.aiter_raw():
            for name, data in scanner.feed(chunk):
                events.append((name.decode(), json.loads(data)))
    return events


async def test_chat_streams_text_usage_and_cost(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    events = await chat(
        gateway, tenant.key, {"message": "Hello", "user": "bob"}, **{"x-sim-output-tokens": "40"}
    )
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-2:] == ["usage", "done"]
    assert names.count("delta") == 40
    text = "".join(data["text"] for name, data in events if name == "delta")
    assert "\n" in text  # newline tokens survive as JSON strings
    usage = dict(events)["usage"]
    [row] = await settled_rows(engine, 1)
    assert usage["output_tokens"] == row["output_tokens"] == 40
    assert usage["input_tokens"] == row["input_tokens"]
    assert Decimal(usage["cost_usd"]) == row["cost_usd"]
    assert isinstance(usage["cost_usd"], str)
    assert dict(events)["start"]["request_id"] == str(row["id"])
    assert dict(events)["done"]["stop_reason"] == "end_turn"
    assert row["end_user_id"] is not None and row["endpoint"] == "chat"


async def test_chat_reports_a_mid_stream_error_as_an_error_event(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    events = await chat(gateway, tenant.key, {"message": "Hello"}, **{"x-sim-fail": "overloaded"})
    assert events[-1][0] == "error"
    assert events[-1][1]["type"] == "overloaded_error"
    [row] = await settled_rows(engine, 1)
    assert row["status"] == "upstream_error"


async def test_chat_without_a_message_is_a_400(gateway: Gateway, tenant: TenantKey) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post("/chat", json={"system": "x"}, headers={"x-api-key": tenant.key})
    assert response.status_code == 400
    assert "message" in response.json()["error"]["message"]
