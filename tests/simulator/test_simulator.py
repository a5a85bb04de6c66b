"""The simulated upstream, driven by the official anthropic SDK (and raw httpx for the wire)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam

from api.simulator import (
    RunningSimulator,
    SimConfig,
    apply_header_overrides,
    start_simulator_task,
    start_simulator_thread,
)
from api.simulator.config import KnobError
from tests.support import wait_until

MODEL = "claude-sonnet-4-6"
LINE = " Hello from the simulated upstream every token here is one word so counting stays easy\n"
HI: list[MessageParam] = [{"role": "user", "content": "Hi there"}]  # 8 bytes -> 2 + 3 = 5 tokens
HI_TOKENS = 5


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    running = start_simulator_thread(SimConfig())
    yield running
    running.stop()


@pytest.fixture
def client(sim: RunningSimulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=sim.url, api_key="test", max_retries=0) as c:
        yield c


def knobs(**values: int | str) -> dict[str, str]:
    """`output_tokens=3` -> {"x-sim-output-tokens": "3"}."""
    return {"x-sim-" + name.replace("_", "-"): str(value) for name, value in values.items()}


def sse_events(raw: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for chunk in raw.split("\n\n"):
        if chunk:
            name_line, data_line = chunk.split("\n")
            assert name_line.startswith("event: ") and data_line.startswith("data: ")
            events.append((name_line[7:], json.loads(data_line[6:])))
    return events


def post(
    sim: RunningSimulator, body: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    all_headers = {"x-api-key": "test", **(headers or {})}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{sim.url}/v1/messages", content=content, headers=all_headers)


# --- the happy paths ------------------------------------------------------------------------


def test_stream_text_and_usage_are_deterministic(client: anthropic.Anthropic) -> None:
    # system 9 bytes + "Hi there" 8 + "Hello" 5 + "ünïcode" 9 (ü, ï are 2 bytes) = 31 bytes
    # -> ceil(31 / 4) = 8, + 3 messages * 3, + 3 for the system prompt = 20
    messages: list[MessageParam] = [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "ünïcode"}]},
    ]
    system: list[anthropic.types.TextBlockParam] = [{"type": "text", "text": "Be brief."}]
    with client.messages.stream(
        model=MODEL, max_tokens=100, system=system, messages=messages
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == LINE * 4  # 64 tokens by default, every 16th one a newline
    assert final.content[0].type == "text" and final.content[0].text == LINE * 4
    assert final.model == MODEL
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 20
    assert final.usage.output_tokens == 64
    assert final.usage.cache_read_input_tokens == 0
    assert final.usage.cache_creation_input_tokens == 0
    assert final.usage.server_tool_use is None


def test_create_stream_sends_events_in_the_documented_order(client: anthropic.Anthropic) -> None:
    stream = client.messages.create(
        model=MODEL, max_tokens=100, messages=HI, stream=True, extra_headers=knobs(output_tokens=3)
    )
    events = list(stream)
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[6]
    assert start.type == "message_start" and delta.type == "message_delta"
    assert re.fullmatch(r"msg_sim_[0-9a-f]{24}", start.message.id)
    assert start.message.model == MODEL
    assert start.message.usage.input_tokens == HI_TOKENS
    assert start.message.usage.output_tokens == 1
    assert delta.usage.output_tokens == 3
    assert delta.usage.input_tokens == HI_TOKENS
    assert delta.delta.stop_reason == "end_turn"
    texts = [
        e.delta.text
        for e in events[2:5]
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    ]
    assert texts == [" Hello", " from", " the"]


def test_wire_format_has_ping_headers_and_cumulative_usage(sim: RunningSimulator) -> None:
    body = {"model": MODEL, "max_tokens": 2, "messages": HI, "stream": True}
    response = post(sim, body, knobs(web_search_requests=2))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert re.fullmatch(r"req_sim_[0-9a-f]{24}", response.headers["request-id"])
    events = sse_events(response.text)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    assert events[0][1]["message"] == {
        "id": events[0][1]["message"]["id"],  # type: ignore[index]
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": MODEL,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 1,
            "service_tier": "standard",
            "inference_geo": "global",
            "speed": "standard",
        },
    }
    assert events[6][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
        "usage": {
            "input_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 2,
            "server_tool_use": {"web_search_requests": 2},
        },
    }


def test_non_streaming_create_returns_a_full_message(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=100, messages=HI, extra_headers=knobs(output_tokens=17)
    )
    assert raw.headers["content-type"] == "application/json"
    assert re.fullmatch(r"req_sim_[0-9a-f]{24}", raw.headers["request-id"])
    message = raw.parse()
    assert re.fullmatch(r"msg_sim_[0-9a-f]{24}", message.id)
    assert message.content[0].type == "text"
    assert message.content[0].text == LINE + " Hello"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == HI_TOKENS
    assert message.usage.output_tokens == 17
    assert message.usage.service_tier == "standard"


def test_count_tokens_uses_the_same_formula(client: anthropic.Anthropic) -> None:
    # "Summarise." 10 bytes + "Hi there" 8 bytes = 18 -> ceil(18 / 4) = 5, + 3 + 3 = 11
    result = client.messages.count_tokens(model=MODEL, system="Summarise.", messages=HI)
    assert result.input_tokens == 11


async def test_async_client_streams_the_same_text(sim: RunningSimulator) -> None:
    headers = knobs(output_tokens=20)
    async with (
        anthropic.AsyncAnthropic(base_url=sim.url, api_key="test", max_retries=0) as c,
        c.messages.stream(model=MODEL, max_tokens=99, messages=HI, extra_headers=headers) as s,
    ):
        text = "".join([chunk async for chunk in s.text_stream])
        final = await s.get_final_message()
    assert text == LINE + " Hello from the simulated"
    assert final.usage.output_tokens == 20


# --- knobs ----------------------------------------------------------------------------------


def test_output_tokens_knob_and_max_tokens_cap(client: anthropic.Anthropic) -> None:
    short = client.messages.create(
        model=MODEL, max_tokens=100, messages=HI, extra_headers=knobs(output_tokens=5)
    )
    assert short.usage.output_tokens == 5 and short.stop_reason == "end_turn"
    capped = client.messages.create(model=MODEL, max_tokens=10, messages=HI)  # knob default 64
    assert capped.usage.output_tokens == 10 and capped.stop_reason == "max_tokens"
    assert capped.content[0].type == "text"
    assert capped.content[0].text == " Hello from the simulated upstream every token here is one"


def test_cache_and_web_search_knobs_appear_in_usage(client: anthropic.Anthropic) -> None:
    headers = knobs(
        cache_read_tokens=100,
        cache_write_5m_tokens=30,
        cache_write_1h_tokens=20,
        web_search_requests=3,
        input_tokens=250_000,
    )
    with client.messages.stream(
        model=MODEL, max_tokens=100, messages=HI, extra_headers=headers
    ) as stream:
        streamed = stream.get_final_message().usage
    plain = client.messages.create(
        model=MODEL, max_tokens=100, messages=HI, extra_headers=headers
    ).usage
    for usage in (streamed, plain):
        assert usage.input_tokens == 250_000
        assert usage.cache_read_input_tokens == 100
        assert usage.cache_creation_input_tokens == 50
        assert usage.cache_creation is not None
        assert usage.cache_creation.ephemeral_5m_input_tokens == 30
        assert usage.cache_creation.ephemeral_1h_input_tokens == 20
        assert usage.server_tool_use is not None
        assert usage.server_tool_use.web_search_requests == 3


def test_status_429_is_a_rate_limit_error(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model=MODEL, max_tokens=10, messages=HI, extra_headers=knobs(status=429)
        )
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert caught.value.body["request_id"] == caught.value.response.headers["request-id"]


@pytest.mark.parametrize(("status", "error_type"), [(529, "overloaded_error"), (500, "api_error")])
def test_status_5xx_errors_carry_the_anthropic_type(
    client: anthropic.Anthropic, status: int, error_type: str
) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.stream(
            model=MODEL, max_tokens=10, messages=HI, extra_headers=knobs(status=status)
        ).__enter__()
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == error_type


def test_overloaded_mid_stream_raises_during_iteration(client: anthropic.Anthropic) -> None:
    stream = client.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=HI,
        stream=True,
        extra_headers=knobs(output_tokens=10, fail="overloaded", fail_after=4),
    )
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in stream:
            seen.append(event.type)
    assert seen.count("content_block_delta") == 4
    assert caught.value.status_code == 200
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_overloaded_defaults_to_failing_halfway(sim: RunningSimulator) -> None:
    body = {"model": MODEL, "max_tokens": 100, "messages": HI, "stream": True}
    response = post(sim, body, knobs(output_tokens=10, fail="overloaded"))
    names = [name for name, _ in sse_events(response.text)]
    assert names.count("content_block_delta") == 5
    assert names[-1] == "error" and "message_delta" not in names


def test_truncate_ends_the_stream_without_message_stop(
    client: anthropic.Anthropic, sim: RunningSimulator
) -> None:
    headers = knobs(output_tokens=10, fail="truncate", fail_after=3)
    stream = client.messages.create(
        model=MODEL, max_tokens=100, messages=HI, stream=True, extra_headers=headers
    )
    types = [event.type for event in stream]
    assert types == ["message_start", "content_block_start"] + ["content_block_delta"] * 3
    body = {"model": MODEL, "max_tokens": 100, "messages": HI, "stream": True}
    events = sse_events(post(sim, body, headers).text)
    assert events[-1][0] == "content_block_delta"
    assert "message_stop" not in [name for name, _ in events]


def test_hang_never_answers_so_the_sdk_times_out(sim: RunningSimulator) -> None:
    with (
        anthropic.Anthropic(base_url=sim.url, api_key="t", max_retries=0, timeout=0.5) as c,
        pytest.raises(anthropic.APITimeoutError),  # only a read timeout ends a hang
    ):
        c.messages.create(model=MODEL, max_tokens=10, messages=HI, extra_headers=knobs(fail="hang"))


# --- request validation ---------------------------------------------------------------------


def test_missing_api_key_is_401_and_bearer_is_accepted(sim: RunningSimulator) -> None:
    body = json.dumps({"model": MODEL, "max_tokens": 5, "messages": HI})
    missing = httpx.post(f"{sim.url}/v1/messages", content=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    assert missing.json()["request_id"] == missing.headers["request-id"]
    bearer = httpx.post(
        f"{sim.url}/v1/messages", content=body, headers={"authorization": "Bearer x"}
    )
    assert bearer.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        {"max_tokens": 5, "messages": HI},
        {"model": MODEL, "max_tokens": 0, "messages": HI},
        {"model": MODEL, "max_tokens": 5, "messages": []},
        {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user"}]},
    ],
)
def test_bad_bodies_are_400_invalid_request(sim: RunningSimulator, body: object) -> None:
    response = post(sim, body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert re.fullmatch(r"req_sim_[0-9a-f]{24}", payload["request_id"])


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-sim-output-tokens", "lots"),
        ("x-sim-ttft-ms", "-5"),
        ("x-sim-status", "200"),
        ("x-sim-fail", "explode"),
        ("x-sim-otput-tokens", "3"),
    ],
)
def test_bad_knob_header_is_400_naming_it(
    client: anthropic.Anthropic, header: str, value: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=MODEL, max_tokens=5, messages=HI, extra_headers={header: value}
        )
    assert isinstance(caught.value.body, dict)
    assert header in caught.value.body["error"]["message"]


def test_unknown_path_is_404_and_wrong_method_405(sim: RunningSimulator) -> None:
    missing = httpx.post(f"{sim.url}/v1/complete", headers={"x-api-key": "t"})
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    wrong = httpx.get(f"{sim.url}/v1/messages", headers={"x-api-key": "t"})
    assert wrong.status_code == 405
    assert wrong.json()["type"] == "error"


def test_header_overrides_only_change_what_they_name() -> None:
    base = SimConfig(output_tokens=7)
    assert apply_header_overrides(base, {}) is base
    assert apply_header_overrides(base, {"x-sim-ttft-ms": "2.5"}) == SimConfig(
        output_tokens=7, ttft_ms=2.5
    )
    with pytest.raises(KnobError):
        SimConfig(output_tokens=-1)


# --- timing and disconnects -----------------------------------------------------------------


async def _events(
    http: httpx.AsyncClient, sim: RunningSimulator, headers: dict[str, str], seen: list[str]
) -> None:
    """Stream one answer, appending `tag:event` for each SSE event as it arrives."""
    body = json.dumps({"model": MODEL, "max_tokens": 5, "messages": HI, "stream": True})
    tag = headers["x-sim-ttft-ms"]
    async with http.stream(
        "POST", "/v1/messages", content=body, headers={"x-api-key": "t", **headers}
    ) as response:
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                seen.append(f"{tag}:{line.removeprefix('event: ')}")


async def test_ttft_delays_the_first_delta_but_not_the_headers(sim: RunningSimulator) -> None:
    """Ordering, not timing: a stream whose first token is ten minutes away has sent its headers
    and `message_start`, yet none of its deltas, by the time a whole undelayed answer (started
    after it) has ended."""
    seen: list[str] = []
    async with httpx.AsyncClient(base_url=sim.url, timeout=60) as http:
        slow = asyncio.create_task(_events(http, sim, knobs(ttft_ms=600_000), seen))
        await wait_until(lambda: _now("600000:message_start" in seen), timeout_s=60)
        await _events(http, sim, knobs(ttft_ms=0, output_tokens=2), seen)
        slow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await slow
    assert seen[0] == "600000:message_start"
    assert "0:message_stop" in seen
    assert "0:content_block_delta" in seen
    assert "600000:content_block_delta" not in seen


async def _now(value: bool) -> bool:
    return value


async def test_task_server_ends_promptly_after_client_disconnects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    sim = await start_simulator_task(SimConfig(token_delay_ms=20, output_tokens=10_000))
    body = json.dumps({"model": MODEL, "max_tokens": 20_000, "messages": HI, "stream": True})
    async with httpx.AsyncClient(base_url=sim.url, headers={"x-api-key": "t"}) as http:
        async with http.stream("POST", "/v1/messages", content=body) as response:
            async for line in response.aiter_lines():
                if line == "event: content_block_delta":
                    break
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/v1/messages", content=body, headers=knobs(fail="hang"), timeout=0.3)
    async with anthropic.AsyncAnthropic(base_url=sim.url, api_key="t", max_retries=0) as c:
        message = await c.messages.create(
            model=MODEL, max_tokens=2, messages=HI, extra_headers=knobs(token_delay_ms=0)
        )
    assert message.usage.output_tokens == 2
    # A request left running would hold stop() for the whole grace period (ten minutes); the
    # bound here is generous and only reached if one was.
    await asyncio.wait_for(sim.stop(grace_s=600), timeout=60)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
