"""/v1/chat/completions through the official `openai` SDK, against a real gateway and the
simulated upstream: the SDK works by changing only base_url and the key, and the ledger row is
the /v1/messages row with endpoint `chat_completions`."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import openai
import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Gateway, TenantKey, settled_rows

MODEL = "claude-sonnet-4-6"
HELLO: list[Any] = [{"role": "user", "content": "Hello, Claude"}]
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
M = Decimal(10**6)


def client(gateway: Gateway, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


async def test_stream_with_usage_equals_the_ledger_row_at_the_exact_price(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    stream = await client(gateway, tenant.key).chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, *HELLO],
        stream=True,
        stream_options={"include_usage": True},
        max_completion_tokens=100,
        user="alice",
    )
    chunks = [chunk async for chunk in stream]
    text_out = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text_out.startswith(" Hello from the simulated upstream")
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    [row] = await settled_rows(engine, 1)
    assert row["status"] == "ok" and row["endpoint"] == "chat_completions"
    assert row["model"] == MODEL and row["end_user_id"] is not None
    assert usage.prompt_tokens == row["input_tokens"] > 0
    assert usage.completion_tokens == row["output_tokens"] == 64
    assert usage.total_tokens == usage.prompt_tokens + 64
    assert row["cost_usd"] == Decimal(row["input_tokens"]) * 3 / M + Decimal(64) * 15 / M


async def test_non_streaming_text(gateway: Gateway, tenant: TenantKey, engine: AsyncEngine) -> None:
    completion = await client(gateway, tenant.key).chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=10, stop=["never"], temperature=0.5
    )
    assert completion.object == "chat.completion"
    [choice] = completion.choices
    assert choice.finish_reason == "length"  # the simulator writes 64 tokens, capped at 10
    assert choice.message.role == "assistant" and choice.message.content
    assert completion.usage is not None and completion.usage.completion_tokens == 10
    [row] = await settled_rows(engine, 1)
    assert (row["endpoint"], row["status"], row["output_tokens"]) == ("chat_completions", "ok", 10)
    assert completion.usage.prompt_tokens == row["input_tokens"]


# A reply that reads and writes the prompt cache (the simulator's knobs).
CACHE_KNOBS = {
    "x-sim-input-tokens": "1234",
    "x-sim-cache-read-tokens": "10000",
    "x-sim-cache-write-5m-tokens": "2000",
    "x-sim-cache-write-1h-tokens": "300",
    "x-sim-output-tokens": "17",
}


async def test_prompt_cache_reads_and_writes_are_priced_exactly(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    completion = await client(gateway, tenant.key).chat.completions.create(
        model=MODEL, messages=HELLO, extra_headers=CACHE_KNOBS
    )
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == 1234 + 10000 + 2000 + 300
    assert usage.completion_tokens == 17
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 10000
    [row] = await settled_rows(engine, 1)
    assert (row["input_tokens"], row["cache_read_tokens"]) == (1234, 10000)
    assert (row["cache_write_5m_tokens"], row["cache_write_1h_tokens"]) == (2000, 300)
    # Sonnet 4.6 per million: input $3, output $15, 5 min write $3.75, 1 h write $6, read $0.30
    # 1234*3 + 17*15 + 2000*3.75 + 300*6 + 10000*0.30 = 3702 + 255 + 7500 + 1800 + 3000 = 16257
    assert row["cost_usd"] == Decimal("0.016257")


async def test_streamed_usage_chunk_with_cache_reads_and_writes_is_the_ledger_row(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    """The final chunk's usage comes from the same meter that settles the row."""
    stream = await client(gateway, tenant.key).chat.completions.create(
        model=MODEL,
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=CACHE_KNOBS,
    )
    chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    assert usage is not None and chunks[-1].choices == []
    assert all(c.usage is None for c in chunks[:-1])
    [row] = await settled_rows(engine, 1)
    assert row["status"] == "ok" and row["endpoint"] == "chat_completions"
    written = row["cache_write_5m_tokens"] + row["cache_write_1h_tokens"]
    assert (row["input_tokens"], row["cache_read_tokens"], written) == (1234, 10000, 2300)
    assert usage.prompt_tokens == row["input_tokens"] + row["cache_read_tokens"] + written
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == row["cache_read_tokens"]
    assert usage.completion_tokens == row["output_tokens"] == 17
    assert usage.total_tokens == usage.prompt_tokens + 17
    assert row["cost_usd"] == Decimal("0.016257")


async def test_tool_call_round_trip_streamed_and_not(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    c = client(gateway, tenant.key)
    knobs = {"x-sim-tool-calls": "2", "x-sim-output-tokens": "3"}
    first = await c.chat.completions.create(
        model=MODEL, messages=HELLO, tools=[WEATHER], max_tokens=200, extra_headers=knobs
    )
    [choice] = first.choices
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(t.function.name, json.loads(t.function.arguments)) for t in calls] == [
        ("get_weather", {"city": "simulated"})
    ] * 2
    async with c.chat.completions.stream(
        model=MODEL, messages=HELLO, tools=[WEATHER], max_tokens=200, extra_headers=knobs
    ) as stream:
        streamed = await stream.get_final_completion()
    streamed_calls = streamed.choices[0].message.tool_calls or []
    assert [t.function.arguments for t in streamed_calls] == [t.function.arguments for t in calls]
    assert streamed.choices[0].finish_reason == "tool_calls"
    history: list[Any] = [
        *HELLO,
        choice.message.model_dump(exclude_none=True),
        *({"role": "tool", "tool_call_id": t.id, "content": "sunny"} for t in calls),
    ]
    second = await c.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER], max_tokens=200
    )
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content
    rows = await settled_rows(engine, 3)
    assert [r["status"] for r in rows] == ["ok"] * 3


async def test_forced_tool_choice(gateway: Gateway, tenant: TenantKey) -> None:
    completion = await client(gateway, tenant.key).chat.completions.create(
        model=MODEL,
        messages=HELLO,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    [call] = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"


async def test_images_from_data_and_https_urls(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    content: Any = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    completion = await client(gateway, tenant.key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content
    [row] = await settled_rows(engine, 1)
    assert row["status"] == "ok" and row["input_tokens"] > 10


class Thing(BaseModel):
    name: str
    count: int


@pytest.mark.parametrize("model", [MODEL, "claude-sonnet-4-20250514"])
async def test_json_schema_response_format_parses(
    gateway: Gateway, tenant: TenantKey, model: str
) -> None:
    """Structured outputs on 4.6; a forced tool on Sonnet 4 — the SDK can't tell."""
    completion = await client(gateway, tenant.key).chat.completions.parse(
        model=model, messages=HELLO, response_format=Thing
    )
    assert completion.choices[0].message.parsed == Thing(name="simulated", count=1)
    assert completion.choices[0].finish_reason == "stop"


async def test_json_object_response_format(gateway: Gateway, tenant: TenantKey) -> None:
    completion = await client(gateway, tenant.key).chat.completions.create(
        model=MODEL, messages=HELLO, response_format={"type": "json_object"}
    )
    assert json.loads(completion.choices[0].message.content or "") == {}


async def test_reasoning_effort_thinks_and_returns_the_reasoning(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    c = client(gateway, tenant.key)
    whole = await c.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        reasoning_effort="low",
        extra_headers={"x-sim-output-tokens": "5"},
    )
    message: Any = whole.choices[0].message
    assert message.reasoning_content == "Let me think."
    assert message.content == " Hello from the simulated upstream"
    assert whole.usage is not None and whole.usage.completion_tokens == 4 + 5
    stream = await c.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        reasoning_effort="low",
        stream=True,
        extra_headers={"x-sim-output-tokens": "5"},
    )
    deltas: list[Any] = [chunk.choices[0].delta async for chunk in stream if chunk.choices]
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == "Let me think."
    assert "".join(d.content or "" for d in deltas) == " Hello from the simulated upstream"
    rows = await settled_rows(engine, 2)
    # thinking (4) + text (5); the signature_delta event carries no token
    assert [r["output_tokens"] for r in rows] == [9, 9]
