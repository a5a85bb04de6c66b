"""UsageMeter reads usage from the usage-carrying events only, under any chunking."""

from __future__ import annotations

import itertools
import json

from api.metering.meter import UsageMeter, text_of_delta
from api.pricing.cost import Usage

from .test_sse import REFERENCE_STREAM

Snapshot = tuple[object, ...]


def snapshot(meter: UsageMeter) -> Snapshot:
    return (
        meter.usage,
        meter.model,
        meter.message_id,
        meter.stop_reason,
        meter.saw_message_start,
        meter.saw_message_stop,
        meter.error_type,
        meter.error_message,
        meter.parse_errors,
        meter.complete,
        meter.has_partial,
    )


def metered(chunks: list[bytes]) -> UsageMeter:
    meter = UsageMeter()
    for chunk in chunks:
        meter.observe(chunk)
    return meter


def event(name: str, payload: object) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


def start(usage: dict[str, object], model: str = "claude-sonnet-4-6") -> bytes:
    message = {"id": "msg_1", "type": "message", "model": model, "usage": usage}
    return event("message_start", {"type": "message_start", "message": message})


def delta(usage: dict[str, object], stop_reason: str | None = None) -> bytes:
    body = {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": usage}
    return event("message_delta", body)


STOP = event("message_stop", {"type": "message_stop"})


def test_reference_stream_whole() -> None:
    meter = metered([REFERENCE_STREAM])
    assert meter.usage == Usage(input_tokens=25, output_tokens=15)
    assert meter.model == "claude-opus-4-8"
    assert meter.message_id == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
    assert meter.stop_reason == "end_turn"
    assert meter.saw_message_start and meter.saw_message_stop
    assert meter.complete
    assert meter.error_type is None and meter.parse_errors == 0
    assert not meter.has_partial


def test_reference_stream_byte_by_byte_and_at_every_split_point() -> None:
    expected = snapshot(metered([REFERENCE_STREAM]))
    one_byte = [REFERENCE_STREAM[i : i + 1] for i in range(len(REFERENCE_STREAM))]
    assert snapshot(metered(one_byte)) == expected
    for cut in range(len(REFERENCE_STREAM) + 1):
        chunks = [REFERENCE_STREAM[:cut], REFERENCE_STREAM[cut:]]
        assert snapshot(metered(chunks)) == expected, cut


def test_crlf_stream_gives_the_same_result() -> None:
    expected = snapshot(metered([REFERENCE_STREAM]))
    crlf = REFERENCE_STREAM.replace(b"\n", b"\r\n")
    for cut in range(len(crlf) + 1):
        assert snapshot(metered([crlf[:cut], crlf[cut:]])) == expected, cut


def test_multi_line_data_and_comments() -> None:
    stream = (
        b": hello\n\n"
        b"event: message_start\n: a comment inside\n"
        b'data: {"type": "message_start",\ndata:  "message": {"model": "claude-haiku-4-5",\n'
        b'data: "usage": {"input_tokens": 7, "output_tokens": 1}}}\n\n'
    ) + STOP
    meter = metered([stream])
    assert meter.model == "claude-haiku-4-5"
    assert meter.usage == Usage(input_tokens=7, output_tokens=1)
    assert meter.complete


def test_unknown_and_content_events_are_ignored_without_parsing() -> None:
    stream = (
        start({"input_tokens": 3, "output_tokens": 1})
        + b"event: content_block_delta\ndata: {not json\n\n"
        + b"event: brand_new_event\ndata: {also not json\n\n"
        + b"data: {no event line, so 'message'\n\n"
        + STOP
    )
    meter = metered([stream])
    assert meter.parse_errors == 0
    assert meter.usage == Usage(input_tokens=3, output_tokens=1)
    assert meter.complete


def test_message_start_with_cache_split_server_tools_and_geo() -> None:
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 4000,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
        "output_tokens": 1,
        "server_tool_use": {"web_search_requests": 2},
        "service_tier": "standard",
        "inference_geo": "us",
    }
    meter = metered([start(usage), STOP])
    assert meter.usage == Usage(
        input_tokens=10,
        output_tokens=1,
        cache_write_5m_tokens=100,
        cache_write_1h_tokens=200,
        cache_read_tokens=4000,
        web_search_requests=2,
        inference_geo="us",
    )


def test_cache_creation_without_split_counts_as_5m() -> None:
    meter = metered([start({"input_tokens": 5, "cache_creation_input_tokens": 1200})])
    assert meter.usage.cache_write_5m_tokens == 1200
    assert meter.usage.cache_write_1h_tokens == 0
    assert meter.usage.cache_creation_input_tokens == 1200


def test_message_delta_usage_is_cumulative_and_overwrites() -> None:
    stream = (
        start({"input_tokens": 100, "output_tokens": 1, "cache_read_input_tokens": 50})
        + delta({"output_tokens": 40})
        # a server tool ran: input, cache and search counters rise mid-stream
        + delta(
            {
                "input_tokens": 900,
                "cache_read_input_tokens": 80,
                "cache_creation_input_tokens": 30,
                "output_tokens": 120,
                "server_tool_use": {"web_search_requests": 1},
            }
        )
        # null fields must not overwrite held values
        + delta(
            {
                "input_tokens": None,
                "cache_read_input_tokens": None,
                "cache_creation_input_tokens": None,
                "cache_creation": None,
                "server_tool_use": None,
                "output_tokens": 150,
            },
            stop_reason="end_turn",
        )
        + STOP
    )
    meter = metered([stream])
    assert meter.usage == Usage(
        input_tokens=900,
        output_tokens=150,
        cache_write_5m_tokens=30,
        cache_read_tokens=80,
        web_search_requests=1,
    )
    assert meter.stop_reason == "end_turn"
    assert meter.complete


def test_null_stop_reason_does_not_erase_a_recorded_one() -> None:
    meter = metered([start({}), delta({}, "tool_use"), delta({"output_tokens": 3}), STOP])
    assert meter.stop_reason == "tool_use"
    assert meter.usage.output_tokens == 3


def test_error_event_marks_the_stream_failed() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    meter = metered([start({"input_tokens": 12, "output_tokens": 1}), event("error", error)])
    assert meter.error_type == "overloaded_error"
    assert meter.error_message == "Overloaded"
    assert meter.usage.input_tokens == 12
    assert not meter.complete
    # even if a message_stop followed, an error means not complete
    meter.observe(STOP)
    assert not meter.complete


def test_malformed_usage_events_are_counted_not_raised() -> None:
    stream = (
        start({"input_tokens": 10, "output_tokens": 1})
        + b"event: message_delta\ndata: {truncated\n\n"
        + b"event: message_delta\ndata: [1, 2]\n\n"
        + b'event: message_start\ndata: {"message": 5}\n\n'
        + b"event: message_delta\ndata: \xff\xfe\n\n"
        + delta({"output_tokens": "many", "input_tokens": -3})
        + delta({"output_tokens": 9})
        + STOP
    )
    meter = metered([stream])
    assert meter.parse_errors == 4
    assert meter.usage == Usage(input_tokens=10, output_tokens=9)
    assert meter.complete


def test_malformed_error_event_still_fails_the_stream() -> None:
    meter = metered([start({}), b"event: error\ndata: oops\n\n"])
    assert meter.error_type == "unknown_error"
    assert meter.parse_errors == 1
    assert not meter.complete


def test_truncated_stream_is_not_complete() -> None:
    cut_between = REFERENCE_STREAM.index(b"event: message_stop")
    meter = metered([REFERENCE_STREAM[:cut_between]])
    assert meter.usage == Usage(input_tokens=25, output_tokens=15)
    assert not meter.complete
    assert not meter.has_partial
    meter = metered([REFERENCE_STREAM[: cut_between + 30]])
    assert not meter.complete
    assert meter.has_partial


def test_observe_event_for_callers_that_split_events_themselves() -> None:
    meter = UsageMeter()
    meter.observe_event(b"message_start", start({"input_tokens": 4}).split(b"data: ")[1].strip())
    meter.observe_event(b"content_block_delta", b"not json")
    meter.observe_event(b"message_delta", b'{"usage": {"output_tokens": 8}}')
    meter.observe_event(b"message_stop", b"{}")
    assert meter.usage == Usage(input_tokens=4, output_tokens=8)
    assert meter.complete and meter.parse_errors == 0


def test_text_of_delta() -> None:
    text = b'{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", '
    assert text_of_delta(text + b'"text": "Hi\\n"}}') == "Hi\n"
    json_delta = (
        b'{"type": "content_block_delta", "index": 1, '
        b'"delta": {"type": "input_json_delta", "partial_json": "{\\"q\\": \\"text_delta\\""}}'
    )
    assert text_of_delta(json_delta) is None
    assert text_of_delta(b'{"type": "ping"}') is None
    assert text_of_delta(b"text_delta but {broken") is None


def test_non_streaming_message() -> None:
    body: dict[str, object] = {
        "id": "msg_2",
        "type": "message",
        "model": "claude-opus-4-6",
        "stop_reason": "max_tokens",
        "usage": {
            "input_tokens": 50,
            "output_tokens": 20,
            "cache_creation_input_tokens": 10,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 10},
            "cache_read_input_tokens": 0,
        },
    }
    meter = UsageMeter()
    meter.observe_message(body)
    assert meter.usage == Usage(input_tokens=50, output_tokens=20, cache_write_1h_tokens=10)
    assert (meter.model, meter.message_id, meter.stop_reason) == (
        "claude-opus-4-6",
        "msg_2",
        "max_tokens",
    )
    assert meter.complete


def test_non_streaming_error_body() -> None:
    meter = UsageMeter()
    meter.observe_message({"type": "error", "error": {"type": "api_error", "message": "boom"}})
    assert (meter.error_type, meter.error_message) == ("api_error", "boom")
    assert not meter.complete


def test_many_chunkings_of_a_long_stream_agree() -> None:
    stream = start({"input_tokens": 10, "cache_creation_input_tokens": 5, "output_tokens": 1})
    for i in range(64):
        stream += event("content_block_delta", {"delta": {"type": "text_delta", "text": f"w{i}"}})
    stream += delta({"output_tokens": 64}, "end_turn") + STOP
    expected = snapshot(metered([stream]))
    for size in itertools.chain(range(1, 40), (97, 256, 1000)):
        chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert snapshot(metered(chunks)) == expected, size
