"""Anthropic Messages SSE bytes in, OpenAI `chat.completion.chunk` SSE bytes out.

One translator per stream, fed the upstream bytes exactly as they arrive (any chunking):
- `message_start` → the first chunk, `delta: {"role": "assistant", "content": ""}`;
- text deltas → `delta.content`; thinking deltas → `delta.reasoning_content`;
- a `tool_use` block → `delta.tool_calls[{index, id, type, function: {name, arguments: ""}}]`
  and each `input_json_delta` → `delta.tool_calls[{index, function: {arguments}}]`, with
  `index` counting the tool calls of the reply from 0; the input of a forced answer tool
  (response_format) streams as `delta.content` instead;
- `message_delta` → a chunk with an empty delta and the mapped `finish_reason`;
- `message_stop` → with `include_usage`, a chunk with `choices: []` and the usage (every
  other chunk then carries `"usage": null`, as OpenAI's do), then `data: [DONE]`;
- an `error` event → `data: {"error": {...}}` in OpenAI's shape, and the stream ends.
Usage, the message id, the stop reason and an upstream error are read from the relay's own
UsageMeter (`MeteredStream.meter`, one meter per request), which has observed each chunk before
it is handed here: the usage chunk is the ledger row's usage, not a second reading of it.

Fast path: a text delta in the upstream's own layout is copied into the chunk as its raw JSON
string literal, with no JSON decoding or encoding; a run of them within one chunk is matched
and joined by the regex engine and bytes.join at once (no Python work per delta); other events
in the plain two-line layout are read without the SSE scanner; anything else takes the general
path. An event split between two chunks is completed by the SSE scanner, and the fast path
resumes right after it (the upstream client hands over whatever bytes have arrived, so a long
reply often comes as a few large chunks whose edges cut events).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from api.metering.meter import UsageMeter
from api.metering.sse import SSEScanner
from api.openai.errors import error_object, openai_error_shape
from api.openai.jsonbody import dumps
from api.openai.response import completion_id, finish_reason, openai_usage, reasoning_tokens_of

# A text delta's data in the upstream's own layout; group 1 is the text's JSON literal (written
# as "normal* (escape normal*)*", which the regex engine runs without backtracking).
_TEXT_DATA = re.compile(
    rb'\{"type":"content_block_delta","index":\d+,'
    rb'"delta":\{"type":"text_delta","text":("[^"\\\n\r]*(?:\\.[^"\\\n\r]*)*")\}\}'
)
_TEXT_EVENT = re.compile(b"event: content_block_delta\ndata: " + _TEXT_DATA.pattern)  # whole
_TEXT_CHUNK = re.compile(_TEXT_EVENT.pattern + b"\n\n")  # a chunk that is exactly one
# The same with a one-digit index (every block of a usual reply), for whole runs of them: the
# regex engine collects their literals in one pass, and a run is accepted when its matches
# tile it exactly (each match is _TEXT_FIXED bytes plus its literal).
_TEXT_CHUNK_1 = re.compile(_TEXT_CHUNK.pattern.replace(rb"\d+", rb"\d", 1))
_TEXT_FIXED = len(
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":}}\n\n'
)
_DELTA_LINE = b"event: content_block_delta\n"
# The start of an empty text block, the usual one, in the upstream's layout; group 1 is its index.
_TEXT_START_DATA = re.compile(
    rb'\{"type":"content_block_start","index":(\d+),"content_block":\{"type":"text","text":""\}\}'
)
# Any other whole event in the plain layout (one `event:` line, one `data:` line): name, data.
_PLAIN_EVENT = re.compile(rb"event: ([a-z_]+)\ndata: ([^\n]*)")
_METERED = frozenset({b"message_start", b"message_delta", b"message_stop", b"error"})
_DONE = b"data: [DONE]\n\n"

_TEXT, _THINKING, _TOOL, _ANSWER, _OTHER = range(5)


class ChunkTranslator:
    def __init__(
        self,
        model: str,
        meter: UsageMeter,
        *,
        include_usage: bool,
        answer_tool: str | None = None,
    ) -> None:
        """`meter` observes every chunk before `feed` gets it (the relay's order)."""
        self.meter = meter
        self.done = False
        self._model = model
        self._include_usage = include_usage
        self._answer_tool = answer_tool
        self._answer_used = False
        self._scanner = SSEScanner()
        self._clean = False  # the scanner holds no partial event (the last chunk ended one)
        self._ended_nl = False  # the last chunk the scanner took ended with a line feed
        self._crlf = False  # a CR was seen: every chunk goes through the scanner
        self._created = int(time.time())
        self._reasoning_tokens = 0
        self._blocks: dict[int, tuple[int, int]] = {}  # upstream index -> (kind, tool index)
        self._tools = 0
        self._envelope = b""  # `data: {` and the fields every chunk repeats, up to "choices"
        self._head = b""
        self._tail = b""
        self._text_head = b""
        self._text_tail = b""
        self._text_between = b""
        self._set_id("chatcmpl-tollgate")

    def _set_id(self, chunk_id: str) -> None:
        """Every chunk's bytes but its delta, built once per id (the id comes with
        message_start)."""
        self._envelope = (
            f'data: {{"id":{json.dumps(chunk_id)},"object":"chat.completion.chunk",'
            f'"created":{self._created},"model":{json.dumps(self._model)},'
            '"system_fingerprint":null,'
        ).encode()
        self._head = self._envelope + b'"choices":[{"index":0,"delta":'
        self._tail = self._tail_with("null")
        self._text_head = self._head + b'{"content":'
        self._text_tail = b"}" + self._tail
        self._text_between = self._text_tail + self._text_head

    def _tail_with(self, reason: str) -> bytes:
        usage = ',"usage":null' if self._include_usage else ""
        return f',"logprobs":null,"finish_reason":{reason}}}]{usage}}}\n\n'.encode()

    def feed(self, chunk: bytes) -> bytes:
        """The OpenAI SSE bytes for this piece of the upstream stream (often b"")."""
        if self.done or not chunk:
            return b""
        if self._clean and (text := _TEXT_CHUNK.fullmatch(chunk)) is not None:
            return self._text_head + text.group(1) + self._text_tail  # still clean after it
        if self._crlf or b"\r" in chunk:  # line ends other than LF: the scanner throughout
            self._crlf = True
            return self._translate(chunk)
        out: list[bytes] = []
        start = 0
        if not self._clean:
            # The scanner holds the start of an event (or nothing has been fed yet): it takes
            # the chunk up to the end of the first event that ends in it, then holds nothing.
            if self._ended_nl and chunk[0] == 0x0A:  # the blank line split by the chunking
                start = 1
            else:
                start = chunk.find(b"\n\n") + 2
                if start == 1:  # no event ends in this chunk
                    self._ended_nl = chunk[-1] == 0x0A
                    return self._translate(chunk)
            out.append(self._translate(chunk[:start]))
            self._clean = True
        end = start
        last = chunk.rfind(b"\n\n", start)
        if last != -1:
            end = last + 2
            self._whole(chunk, start, end, out)
        if end < len(chunk) and not self.done:  # an event that the next chunk completes
            out.append(self._translate(chunk[end:]))
            self._clean = False
            self._ended_nl = chunk[-1] == 0x0A
        return b"".join(out)

    def _whole(self, chunk: bytes, start: int, end: int, out: list[bytes]) -> None:
        """chunk[start:end] is whole events. The text deltas in the middle (from the first to
        the end of the last) are translated at once when they are nothing but text deltas in
        the upstream's layout; everything else event by event."""
        first = chunk.find(_DELTA_LINE, start, end)
        if first != -1 and (first == start or chunk[first - 2 : first] == b"\n\n"):
            stop = chunk.find(b"\n\n", chunk.rfind(_DELTA_LINE, first, end), end) + 2
            run = self._text_run(chunk, first, stop)
            if run is not None:
                self._events(chunk, start, first, out)
                if not self.done:
                    out.append(run)
                    self._events(chunk, stop, end, out)
                return
        self._events(chunk, start, end, out)

    def _text_run(self, chunk: bytes, start: int, end: int) -> bytes | None:
        """The chunks for chunk[start:end] if it is text deltas only (one-digit indexes)."""
        texts = _TEXT_CHUNK_1.findall(chunk, start, end)
        joined = self._text_between.join(texts)
        literals = len(joined) - (len(texts) - 1) * len(self._text_between)
        if not texts or len(texts) * _TEXT_FIXED + literals != end - start:
            return None  # the matches do not tile it: something else is in between
        return self._text_head + joined + self._text_tail

    def _events(self, chunk: bytes, start: int, end: int, out: list[bytes]) -> None:
        """chunk[start:end], whole events, one by one: text deltas and other events in the
        upstream's layout without the scanner, anything else through it."""
        if end - 2 < start:
            return  # nothing (and a negative end would slice from the back)
        for block in chunk[start : end - 2].split(b"\n\n"):
            if self.done:
                break
            if (text := _TEXT_EVENT.fullmatch(block)) is not None:
                out.append(self._text_head + text.group(1) + self._text_tail)
            elif (plain := _PLAIN_EVENT.fullmatch(block)) is not None:
                out.append(self._event(plain.group(1), plain.group(2)))
            elif block.strip(b"\n"):
                out.append(self._translate(block + b"\n\n"))

    def _translate(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for name, data in self._scanner.feed(chunk):
            out.append(self._event(name, data))
            if self.done:
                break
        return b"".join(out)

    def _event(self, name: bytes, data: bytes) -> bytes:
        if name == b"content_block_delta":
            return self._delta(data)
        if name in _METERED:
            return self._lifecycle(name, data)
        if name == b"content_block_start":
            return self._block_start(data)
        return b""  # ping, content_block_stop, and names we do not know

    def finish(self) -> bytes:
        """Call when the upstream stream has ended: an error chunk if it ended early."""
        if self.done:
            return b""
        self.done = True
        return self._error_chunk(
            "server_error", "the upstream stream ended before the reply was complete", None
        )

    def _chunk(self, delta: bytes) -> bytes:
        return self._head + delta + self._tail

    def _delta(self, data: bytes) -> bytes:
        if (text := _TEXT_DATA.fullmatch(data)) is not None:  # e.g. an event cut by the chunking
            return self._text_head + text.group(1) + self._text_tail
        event = _load(data)
        delta = event.get("delta") if event else None
        if not isinstance(delta, dict):
            return b""
        index = event.get("index") if event else None
        kind, tool = self._blocks.get(index if isinstance(index, int) else -1, (_OTHER, -1))
        dtype = delta.get("type")
        if dtype == "text_delta":
            return self._json_delta({"content": delta.get("text", "")})
        if dtype == "thinking_delta":
            return self._json_delta({"reasoning_content": delta.get("thinking", "")})
        if dtype != "input_json_delta" or not delta.get("partial_json"):
            return b""
        if kind == _ANSWER:
            return self._json_delta({"content": delta["partial_json"]})
        if kind == _TOOL:
            call = {"index": tool, "function": {"arguments": delta["partial_json"]}}
            return self._json_delta({"tool_calls": [call]})
        return b""

    def _json_delta(self, delta: dict[str, Any]) -> bytes:
        return self._chunk(dumps(delta))

    def _block_start(self, data: bytes) -> bytes:
        if (empty_text := _TEXT_START_DATA.fullmatch(data)) is not None:
            self._blocks[int(empty_text.group(1))] = (_TEXT, -1)
            return b""
        event = _load(data)
        block = event.get("content_block") if event else None
        index = event.get("index") if event else None
        if not isinstance(block, dict) or not isinstance(index, int):
            return b""
        btype = block.get("type")
        if btype == "text":
            self._blocks[index] = (_TEXT, -1)
            text = block.get("text")
            return self._json_delta({"content": text}) if text else b""
        if btype == "thinking":
            self._blocks[index] = (_THINKING, -1)
            return b""
        if btype != "tool_use":
            self._blocks[index] = (_OTHER, -1)
            return b""
        if self._answer_tool is not None and block.get("name") == self._answer_tool:
            self._answer_used = True
            self._blocks[index] = (_ANSWER, -1)
            return b""
        tool = self._tools
        self._tools += 1
        self._blocks[index] = (_TOOL, tool)
        call = {
            "index": tool,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return self._json_delta({"tool_calls": [call]})

    def _lifecycle(self, name: bytes, data: bytes) -> bytes:
        meter = self.meter
        if name == b"message_start":
            self._set_id(completion_id(meter.message_id))
            return self._chunk(b'{"role":"assistant","content":"","refusal":null}')
        if name == b"message_delta":
            if b"output_tokens_details" in data:
                event = _load(data)
                self._reasoning_tokens = reasoning_tokens_of(event.get("usage") if event else None)
            reason = finish_reason(meter.stop_reason, answer_tool_used=self._answer_used)
            if reason is None:
                return b""
            return self._head + b"{}" + self._tail_with(f'"{reason}"')
        if name == b"message_stop":
            self.done = True
            if not self._include_usage:
                return _DONE
            usage = json.dumps(openai_usage(meter.usage, self._reasoning_tokens)).encode()
            return self._envelope + b'"choices":[],"usage":' + usage + b"}\n\n" + _DONE
        self.done = True  # error
        shape = openai_error_shape(500, meter.error_type)
        message = meter.error_message or "the upstream stream failed"
        return self._error_chunk(shape.type, message, shape.code)

    def _error_chunk(self, error_type: str, message: str, code: str | None) -> bytes:
        return self._data({"error": error_object(message, error_type, None, code)})

    @staticmethod
    def _data(payload: dict[str, Any]) -> bytes:
        return b"data: " + dumps(payload) + b"\n\n"


def _load(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
