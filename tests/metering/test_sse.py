"""SSEScanner splits events identically however the byte stream is chunked."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from api.metering.sse import SSEEvent, SSEScanner

# The streamed Messages response from REFERENCE.md, verbatim.
REFERENCE_STREAM = (
    b"event: message_start\n"
    b'data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"'
    b', "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-8", '
    b'"stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, '
    b'"output_tokens": 1}}}\n'
    b"\n"
    b"event: content_block_start\n"
    b'data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", '
    b'"text": ""}}\n'
    b"\n"
    b"event: ping\n"
    b'data: {"type": "ping"}\n'
    b"\n"
    b"event: content_block_delta\n"
    b'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", '
    b'"text": "Hello"}}\n'
    b"\n"
    b"event: content_block_delta\n"
    b'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", '
    b'"text": "!"}}\n'
    b"\n"
    b"event: content_block_stop\n"
    b'data: {"type": "content_block_stop", "index": 0}\n'
    b"\n"
    b"event: message_delta\n"
    b'data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", '
    b'"stop_sequence":null}, "usage": {"output_tokens": 15}}\n'
    b"\n"
    b"event: message_stop\n"
    b'data: {"type": "message_stop"}\n'
    b"\n"
)
REFERENCE_NAMES = [
    b"message_start",
    b"content_block_start",
    b"ping",
    b"content_block_delta",
    b"content_block_delta",
    b"content_block_stop",
    b"message_delta",
    b"message_stop",
]


def scan(chunks: list[bytes], only: set[bytes] | None = None) -> tuple[list[SSEEvent], bool]:
    scanner = SSEScanner(only=only)
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(scanner.feed(chunk))
    events.extend(scanner.flush())
    return events, scanner.has_partial


def split_at(data: bytes, *cuts: int) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def test_reference_stream_whole() -> None:
    events, partial = scan([REFERENCE_STREAM])
    assert [name for name, _ in events] == REFERENCE_NAMES
    assert events[2] == (b"ping", b'{"type": "ping"}')
    assert events[7] == (b"message_stop", b'{"type": "message_stop"}')
    assert not partial


def test_reference_stream_byte_by_byte_and_at_every_split_point() -> None:
    expected, _ = scan([REFERENCE_STREAM])
    one_byte = [REFERENCE_STREAM[i : i + 1] for i in range(len(REFERENCE_STREAM))]
    assert scan(one_byte) == (expected, False)
    for cut in range(len(REFERENCE_STREAM) + 1):
        assert scan(split_at(REFERENCE_STREAM, cut)) == (expected, False), cut


def test_random_chunkings_agree() -> None:
    expected, _ = scan([REFERENCE_STREAM])
    rng = random.Random(7)
    for _ in range(300):
        cuts = rng.sample(range(len(REFERENCE_STREAM)), rng.randint(1, 40))
        assert scan(split_at(REFERENCE_STREAM, *cuts)) == (expected, False)


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_crlf_and_cr_line_endings_at_every_split_point(newline: bytes) -> None:
    expected, _ = scan([REFERENCE_STREAM])
    stream = REFERENCE_STREAM.replace(b"\n", newline)
    for cut in range(len(stream) + 1):
        assert scan(split_at(stream, cut)) == (expected, False), cut
    one_byte = [stream[i : i + 1] for i in range(len(stream))]
    assert scan(one_byte) == (expected, False)


def test_mixed_line_endings() -> None:
    stream = b"event: a\r\ndata: 1\r\r\nevent: b\ndata: 2\r\n\r\ndata: 3\n\r"
    assert scan([stream])[0] == [(b"a", b"1"), (b"b", b"2"), (b"message", b"3")]


def test_multiple_data_lines_are_joined_with_newline() -> None:
    stream = b"event: x\ndata: first\ndata:second\ndata\ndata:  two spaces\n\n"
    events, _ = scan([stream])
    assert events == [(b"x", b"first\nsecond\n\n two spaces")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    stream = b": keep-alive\n\n:another\nevent: x\n: inside\nid: 7\nretry: 10\ndata: d\n\n"
    assert scan([stream])[0] == [(b"x", b"d")]


def test_missing_event_line_defaults_to_message_and_last_event_line_wins() -> None:
    stream = b"data: a\n\nevent: one\nevent: two\ndata: b\n\ndata: c\nevent: late\n\n"
    assert scan([stream])[0] == [(b"message", b"a"), (b"two", b"b"), (b"late", b"c")]


def test_event_without_data_is_not_dispatched() -> None:
    assert scan([b"event: empty\n\nevent: x\ndata: y\n\n"])[0] == [(b"x", b"y")]


def test_extra_blank_lines_between_events() -> None:
    stream = b"\n\ndata: a\n\n\n\n\ndata: b\n\n\n"
    for cut in range(len(stream) + 1):
        assert scan(split_at(stream, cut)) == ([(b"message", b"a"), (b"message", b"b")], False)


def test_leading_bom_is_dropped() -> None:
    assert scan([b"\xef\xbb\xbfevent: x\ndata: y\n\n"])[0] == [(b"x", b"y")]


def test_only_filter_skips_other_events_but_honours_renames() -> None:
    stream = REFERENCE_STREAM + b"event: ping\nevent: error\ndata: {}\n\n"
    events, _ = scan([stream], only={b"message_stop", b"error"})
    assert events == [(b"message_stop", b'{"type": "message_stop"}'), (b"error", b"{}")]


def test_unterminated_event_is_not_dispatched_and_reported_partial() -> None:
    cut_mid_event = REFERENCE_STREAM[: REFERENCE_STREAM.index(b"event: message_stop") + 25]
    events, partial = scan([cut_mid_event])
    assert [name for name, _ in events] == REFERENCE_NAMES[:-1]
    assert partial
    # no trailing blank line at all: still not dispatched
    events, partial = scan([REFERENCE_STREAM[:-1]])
    assert [name for name, _ in events] == REFERENCE_NAMES[:-1]
    assert partial


def test_stream_cut_between_events_is_not_partial() -> None:
    cut = REFERENCE_STREAM.index(b"event: message_stop")
    events, partial = scan([REFERENCE_STREAM[:cut]])
    assert len(events) == 7
    assert not partial


def test_large_event_in_many_small_chunks() -> None:
    payload = b"x" * 100_000
    stream = b"event: big\ndata: " + payload + b"\n\n"
    chunks = [stream[i : i + 7] for i in range(0, len(stream), 7)]
    assert scan(chunks) == ([(b"big", payload)], False)


def test_empty_chunks_are_harmless() -> None:
    assert scan([b"", b"data: a\n", b"", b"\n", b""]) == ([(b"message", b"a")], False)


def test_empty_chunk_between_cr_and_lf_keeps_the_pair_together() -> None:
    chunks = [b"data: a\r", b"", b"\n", b"data: b\r\n\r\n"]
    assert scan(chunks) == ([(b"message", b"a\nb")], False)


def reference_parse(stream: bytes) -> list[SSEEvent]:
    """A direct, slow transcription of the SSE spec's line-by-line algorithm."""
    events: list[SSEEvent] = []
    name, data = b"", b""
    lines = re.split(rb"\r\n|\r|\n", stream)
    for line in lines[:-1]:  # the last piece is an unterminated line (or empty)
        if not line:
            if data:
                events.append((name or b"message", data[:-1]))
            name, data = b"", b""
        elif not line.startswith(b":"):
            field, _, value = line.partition(b":")
            value = value.removeprefix(b" ")
            if field == b"data":
                data += value + b"\n"
            elif field == b"event":
                name = value
    return events


def test_random_streams_match_the_spec_algorithm_under_random_chunking() -> None:
    rng = random.Random(2026)
    pieces = [b"data: x", b"data:y", b"data", b"data:  z", b"event: e1", b"event:e2", b": c"]
    pieces += [b"id: 1", b"retry: 5", b"", b"", b"", b"event: message_stop", b"evil: 1"]
    endings = [b"\n", b"\r\n", b"\r"]
    for _ in range(500):
        stream = b"".join(rng.choice(pieces) + rng.choice(endings) for _ in range(30))
        expected = reference_parse(stream)
        cuts = rng.sample(range(len(stream)), rng.randint(0, 25))
        events, _ = scan(split_at(stream, *cuts))
        assert events == expected, stream
        only = {b"e1", b"message_stop"}
        filtered, _ = scan(split_at(stream, *cuts), only=only)
        assert filtered == [e for e in expected if e[0] in only], stream
