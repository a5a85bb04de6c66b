"""Anthropic Messages (whole and streamed) translated to OpenAI chat.completion(.chunk)s."""

from __future__ import annotations

import json
from typing import Any

import pytest

from api.metering.meter import UsageMeter
from api.openai.errors import openai_error_shape, translate_error_body
from api.openai.response import translate_message
from api.openai.stream import ChunkTranslator

MODEL = "claude-sonnet-4-6"
USAGE_START = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 20,
    "cache_read_input_tokens": 30,
    "output_tokens": 1,
}


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def start(i: int, block: dict[str, Any]) -> bytes:
    return sse(
        "content_block_start", {"type": "content_block_start", "index": i, "content_block": block}
    )


def delta(i: int, d: dict[str, Any]) -> bytes:
    return sse("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d})


def stop(i: int) -> bytes:
    return sse("content_block_stop", {"type": "content_block_stop", "index": i})


def json_delta(i: int, partial: str) -> bytes:
    return delta(i, {"type": "input_json_delta", "partial_json": partial})


def tool(i: int, tool_id: str, name: str) -> bytes:
    return start(i, {"type": "tool_use", "id": tool_id, "name": name, "input": {}})


def anthropic_stream(
    stop_reason: str = "tool_use", extra_usage: dict[str, Any] | None = None
) -> bytes:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    start_event = {"type": "message_start", "message": {**message, "usage": USAGE_START}}
    usage = {"output_tokens": 42, **(extra_usage or {})}
    end = {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": usage}
    return b"".join(
        [
            sse("message_start", start_event),
            sse("ping", {"type": "ping"}),
            start(0, {"type": "thinking", "thinking": ""}),
            delta(0, {"type": "thinking_delta", "thinking": "hmm"}),
            stop(0),
            start(1, {"type": "text", "text": ""}),
            delta(1, {"type": "text_delta", "text": 'Hé "quoted"\n'}),
            stop(1),
            tool(2, "toolu_1", "get_weather"),
            json_delta(2, '{"city":'),
            json_delta(2, '"Paris"}'),
            stop(2),
            tool(3, "toolu_2", "get_time"),
            json_delta(3, "{}"),
            stop(3),
            sse("message_delta", end),
            sse("message_stop", {"type": "message_stop"}),
        ]
    )


def chunks_of(out: bytes) -> list[Any]:
    assert out.endswith(b"\n\n")
    result: list[Any] = []
    for frame in out.decode().split("\n\n")[:-1]:
        assert frame.startswith("data: ")
        payload = frame[6:]
        result.append(payload if payload == "[DONE]" else json.loads(payload))
    return result


def translate_pieces(pieces: list[bytes], **kwargs: Any) -> bytes:
    """The translator's output for these upstream chunks, each observed by the relay's meter
    before the translator gets it (as api/proxy/stream.py does)."""
    meter = UsageMeter()
    translator = ChunkTranslator(MODEL, meter, **{"include_usage": True, **kwargs})
    out: list[bytes] = []
    for piece in pieces:
        meter.observe(piece)
        out.append(translator.feed(piece))
    return b"".join(out) + translator.finish()


def translate_stream(raw: bytes, step: int, **kwargs: Any) -> list[Any]:
    """step 0: one event per chunk (as most upstreams send them) — the fast path."""
    if step:
        pieces = [raw[i : i + step] for i in range(0, len(raw), step)]
    else:
        pieces = [event + b"\n\n" for event in raw.split(b"\n\n")[:-1]]
    return chunks_of(translate_pieces(pieces, **kwargs))


@pytest.mark.parametrize("step", [0, 1, 7, 100_000])
def test_stream_translates_text_reasoning_and_tool_calls_for_any_chunking(step: int) -> None:
    chunks = translate_stream(
        anthropic_stream(extra_usage={"output_tokens_details": {"thinking_tokens": 5}}), step
    )
    assert chunks[-1] == "[DONE]"
    *body, usage_chunk, _ = chunks
    assert {c["id"] for c in [*body, usage_chunk]} == {"chatcmpl-msg_1"}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in body)
    assert all(c["usage"] is None for c in body)
    deltas = [c["choices"][0]["delta"] for c in body]
    assert deltas[0] == {"role": "assistant", "content": "", "refusal": None}
    assert deltas[1] == {"reasoning_content": "hmm"}
    assert deltas[2] == {"content": 'Hé "quoted"\n'}
    first_call = {"name": "get_weather", "arguments": ""}
    second_call = {"name": "get_time", "arguments": ""}
    assert deltas[3:7] == [
        {"tool_calls": [{"index": 0, "id": "toolu_1", "type": "function", "function": first_call}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
        {
            "tool_calls": [
                {"index": 1, "id": "toolu_2", "type": "function", "function": second_call}
            ]
        },
    ]
    assert deltas[7] == {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}
    assert deltas[8] == {}
    assert [c["choices"][0]["finish_reason"] for c in body] == [None] * 8 + ["tool_calls"]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": 60,
        "completion_tokens": 42,
        "total_tokens": 102,
        "prompt_tokens_details": {"cached_tokens": 30, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 5,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_finish_reasons(stop_reason: str, finish: str) -> None:
    chunks = translate_stream(anthropic_stream(stop_reason), 100_000, include_usage=False)
    assert chunks[-2]["choices"][0]["finish_reason"] == finish
    assert "usage" not in chunks[-2]


@pytest.mark.parametrize("step", [0, 100_000])
def test_a_forced_answer_tool_streams_as_content_and_finishes_with_stop(step: int) -> None:
    chunks = translate_stream(anthropic_stream(), step, answer_tool="get_weather")
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[:-2]]
    assert "".join(x for x in contents if x) == 'Hé "quoted"\n{"city":"Paris"}'
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    tool_calls = [c["choices"][0]["delta"].get("tool_calls") for c in chunks[:-2]]
    assert [t[0]["index"] for t in tool_calls if t] == [0, 0]  # get_time is tool call 0


def test_a_mid_stream_error_becomes_an_openai_error_chunk_and_ends_the_stream() -> None:
    raw = anthropic_stream()
    cut = raw.index(b"event: content_block_start")
    error = sse(
        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    chunks = translate_stream(raw[:cut] + error + raw[cut:], 100_000)
    assert chunks[-1] == {
        "error": {
            "message": "Overloaded",
            "type": "server_error",
            "param": None,
            "code": "overloaded",
        }
    }
    assert len(chunks) == 2


def test_a_stream_cut_short_ends_with_an_error_chunk() -> None:
    raw = anthropic_stream()
    chunks = translate_stream(raw[: raw.index(b"event: message_delta")], 100_000)
    assert chunks[-1]["error"]["type"] == "server_error"
    assert "[DONE]" not in chunks


def test_a_whole_message_becomes_a_chat_completion() -> None:
    message = {
        "id": "msg_2",
        "type": "message",
        "content": [
            {"type": "thinking", "thinking": "let me see", "signature": "x"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Rome"}},
        ],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 3,
            "cache_read_input_tokens": 4,
            "cache_creation_input_tokens": 5,
            "output_tokens": 6,
        },
    }
    completion = translate_message(message, MODEL)
    assert completion["id"] == "chatcmpl-msg_2"
    assert completion["object"] == "chat.completion"
    [choice] = completion["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    assert choice["message"]["reasoning_content"] == "let me see"
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_9",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
        }
    ]
    assert completion["usage"]["prompt_tokens"] == 12
    assert completion["usage"]["total_tokens"] == 18
    assert completion["usage"]["prompt_tokens_details"]["cached_tokens"] == 4
    answered = translate_message(message, MODEL, answer_tool="get_weather")
    assert answered["choices"][0]["message"]["content"] == 'Checking.{"city": "Rome"}'
    assert answered["choices"][0]["finish_reason"] == "stop"
    assert "tool_calls" not in answered["choices"][0]["message"]


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        (400, "invalid_request_error", (400, "invalid_request_error", None)),
        (401, "authentication_error", (401, "invalid_request_error", "invalid_api_key")),
        (402, "billing_error", (402, "insufficient_quota", "insufficient_quota")),
        (404, "not_found_error", (404, "invalid_request_error", "model_not_found")),
        (429, "rate_limit_error", (429, "requests", "rate_limit_exceeded")),
        (500, "api_error", (500, "server_error", None)),
        (504, "timeout_error", (504, "server_error", "timeout")),
        (529, "overloaded_error", (503, "server_error", "overloaded")),
        (418, None, (418, "invalid_request_error", None)),
    ],
)
def test_error_statuses_and_types(status: int, kind: str | None, expected: tuple[Any, ...]) -> None:
    shape = openai_error_shape(status, kind)
    assert (shape.status, shape.type, shape.code) == expected


def test_an_anthropic_error_body_becomes_openai_shaped() -> None:
    body = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    status, out = translate_error_body(429, body)
    assert status == 429
    assert json.loads(out) == {
        "error": {
            "message": "slow down",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    status, out = translate_error_body(502, b"<html>bad gateway</html>")
    assert (status, json.loads(out)["error"]["type"]) == (502, "server_error")


@pytest.mark.parametrize("step", [0, 100_000])
def test_text_deltas_in_another_layout_take_the_general_path(step: int) -> None:
    raw = anthropic_stream("end_turn")
    odd = b'event: content_block_delta\ndata: {"index":1,"type":"content_block_delta",'
    odd += b'"delta":{"text":"x\\"}}","type":"text_delta"}}\n\n'
    cut = raw.index(b"event: message_delta")
    chunks = translate_stream(raw[:cut] + odd + raw[cut:], step)
    contents = [
        c["choices"][0]["delta"].get("content") for c in chunks if c != "[DONE]" and c["choices"]
    ]
    assert 'x"}}' in contents


def word(i: int) -> str:
    """A text delta with characters that JSON escapes (quote, backslashes, line feed, é)."""
    return f'w{i} \u00e9 "q" \\ \\\\\n'


def text_reply(words: int) -> bytes:
    """A reply of many text deltas in the upstream's own layout (the translator's fast path)."""
    text = [delta(0, {"type": "text_delta", "text": word(i)}) for i in range(words)]
    return b"".join(
        [
            anthropic_stream("end_turn").split(b"event: ping")[0],
            start(0, {"type": "text", "text": ""}),
            *text,
            stop(0),
            sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
            sse("message_stop", {"type": "message_stop"}),
        ]
    )


def without_created(chunks: list[Any]) -> list[Any]:
    return [{k: v for k, v in c.items() if k != "created"} if c != "[DONE]" else c for c in chunks]


@pytest.mark.parametrize("layout", ["lf", "blank lines", "crlf"])
def test_a_reply_cut_anywhere_into_large_chunks_translates_as_event_by_event(layout: str) -> None:
    """The upstream client hands over whatever has arrived, so events are cut at chunk edges:
    every cut (inside a line, between the two line feeds, right after an event) gives the same
    chunks as one event per chunk."""
    raw = text_reply(40)
    if layout == "blank lines":
        raw = raw.replace(b"\n\n", b"\n\n\n")
    elif layout == "crlf":
        raw = raw.replace(b"\n", b"\r\n")
    expected = without_created(translate_stream(text_reply(40), 0))
    assert len(expected) == 1 + 40 + 3  # role, 40 deltas, finish, usage, [DONE]
    texts = [c["choices"][0]["delta"]["content"] for c in expected[1:41]]
    assert texts == [word(i) for i in range(40)]
    separators = [i for i in range(len(raw)) if raw.startswith(b"\n\n", i)]
    cuts = {1, len(raw) // 2, *separators[:5], *(s + 1 for s in separators[5:10])}
    cuts |= {s + 2 for s in separators[10:15]} | {s - 7 for s in separators[15:20]}
    for first in sorted(cuts):
        for second in (first + 1, first + 333, len(raw) - 1):
            pieces = [raw[:first], raw[first:second], raw[second:]]
            out = translate_pieces(pieces)
            assert without_created(chunks_of(out)) == expected, (first, second)


@pytest.mark.parametrize("layout", ["lf", "blank lines"])
@pytest.mark.parametrize("reply", ["text", "tools and thinking"])
def test_every_cut_in_two_translates_as_event_by_event(reply: str, layout: str) -> None:
    """Runs of text deltas are translated at once when nothing else is between them: a cut
    anywhere (inside a run, at its edges, inside the events around it) changes nothing."""
    raw = text_reply(12) if reply == "text" else anthropic_stream("end_turn")
    expected = without_created(translate_stream(raw, 0))
    if layout == "blank lines":
        raw = raw.replace(b"\n\n", b"\n\n\n")
    for cut in range(1, len(raw)):
        got = without_created(chunks_of(translate_pieces([raw[:cut], raw[cut:]])))
        assert got == expected, cut
