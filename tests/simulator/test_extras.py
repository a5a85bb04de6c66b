"""The simulator's tool calls, structured outputs and image checks, through the anthropic SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import ToolParam

from api.simulator import RunningSimulator, SimConfig, start_simulator_thread
from api.simulator.extras import example_for

MODEL = "claude-sonnet-4-6"
HI: list[Any] = [{"role": "user", "content": "Hi"}]
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}


@pytest.fixture(scope="module")
def client() -> Iterator[anthropic.Anthropic]:
    sim: RunningSimulator = start_simulator_thread(SimConfig(output_tokens=5))
    with anthropic.Anthropic(base_url=sim.url, api_key="test", max_retries=0) as c:
        yield c
    sim.stop()


def test_a_knob_makes_the_answer_end_with_streamed_tool_calls(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL,
        max_tokens=200,
        messages=HI,
        tools=[WEATHER],
        extra_headers={"x-sim-tool-calls": "2"},
    ) as stream:
        partials = [e.partial_json for e in stream if e.type == "input_json"]
        final = stream.get_final_message()
    kinds = [block.type for block in final.content]
    assert kinds == ["text", "tool_use", "tool_use"]
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [u.input for u in uses] == [{"city": "simulated", "days": 1}] * 2
    assert len({u.id for u in uses}) == 2
    assert final.stop_reason == "tool_use"
    # one output token per text word and per streamed piece of tool input
    assert final.usage.output_tokens == 5 + len(partials)
    assert "".join(partials) == json.dumps({"city": "simulated", "days": 1}) * 2


def test_a_forced_tool_choice_calls_the_tool_without_text(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=200,
        messages=HI,
        tools=[WEATHER, {"name": "other", "input_schema": {"type": "object"}}],
        tool_choice={"type": "tool", "name": "other"},
    )
    assert [(b.type, getattr(b, "name", None)) for b in message.content] == [("tool_use", "other")]
    assert message.stop_reason == "tool_use"
    none = client.messages.create(
        model=MODEL,
        max_tokens=200,
        messages=HI,
        tools=[WEATHER],
        tool_choice={"type": "none"},
        extra_headers={"x-sim-tool-calls": "3"},
    )
    assert [b.type for b in none.content] == ["text"]
    assert none.stop_reason == "end_turn"


def test_structured_output_text_is_an_example_of_the_schema(client: anthropic.Anthropic) -> None:
    schema = {
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/Item"}, "tags": {"type": "array"}},
        "required": ["item", "tags"],
        "$defs": {"Item": {"type": "object", "properties": {"kind": {"enum": ["a", "b"]}}}},
        "additionalProperties": False,
    }
    message = client.messages.create(
        model=MODEL,
        max_tokens=200,
        messages=HI,
        extra_body={"output_config": {"format": {"type": "json_schema", "schema": schema}}},
    )
    [block] = message.content
    assert block.type == "text"
    assert json.loads(block.text) == {"item": {"kind": "a"}, "tags": [None]}
    assert example_for(schema, schema) == {"item": {"kind": "a"}, "tags": [None]}


def test_images_are_accepted_and_malformed_ones_refused(client: anthropic.Anthropic) -> None:
    image: Any = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    url: Any = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    content: Any = [{"type": "text", "text": "What is it?"}, image, url]
    ok = client.messages.create(
        model=MODEL, max_tokens=10, messages=[{"role": "user", "content": content}]
    )
    assert ok.stop_reason == "end_turn"
    bad: Any = [{"type": "image", "source": {"type": "base64", "media_type": "image/bmp"}}]
    with pytest.raises(anthropic.BadRequestError, match="image"):
        client.messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": bad}]
        )


def test_claude_codes_request_shape_is_accepted_and_answered_in_the_newest_usage(
    client: anthropic.Anthropic,
) -> None:
    """What Claude Code 2.1 sends: its betas, a `system` turn inside `messages` (per-turn
    control), adaptive thinking, context management, effort, a deferred tool, `?beta=true`."""
    betas = "claude-code-20250219,context-management-2025-06-27,per-turn-control-2026-07-01"
    message = client.messages.create(
        model="claude-opus-5-5",
        max_tokens=16000,
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[*HI, {"role": "system", "content": [{"type": "text", "text": "# Env"}]}],
        tools=[WEATHER, {**WEATHER, "name": "later", "defer_loading": True}],  # type: ignore[list-item]
        extra_body={
            "thinking": {"type": "adaptive", "display": "omitted"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "output_config": {"effort": "medium"},
        },
        extra_headers={"anthropic-beta": betas},
        extra_query={"beta": "true"},
    )
    usage = message.usage.model_dump()
    assert message.model == "claude-opus-5-5" and message.stop_reason == "end_turn"
    assert usage["cache_creation"] == {
        "ephemeral_5m_input_tokens": 0,
        "ephemeral_1h_input_tokens": 0,
    }
    assert (usage["service_tier"], usage["inference_geo"], usage["speed"]) == (
        "standard",
        "global",
        "standard",
    )


def test_a_message_with_an_unknown_role_is_still_refused(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="role"):
        client.messages.create(
            model=MODEL,
            max_tokens=5,
            messages=[{"role": "tool", "content": "x"}],  # type: ignore[list-item, misc]
        )
