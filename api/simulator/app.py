"""A raw ASGI app that imitates the Anthropic Messages API closely enough for the official SDK.

It is also the baseline in benchmarks, so the hot path does as little as possible: constant
events are pre-encoded once, each text delta is a pre-built ASGI message, and only
`message_start` and `message_delta` are formatted per request.

Routes: `POST /v1/messages` (streaming and not) and `POST /v1/messages/count_tokens`; the
Message Batches and Files APIs live in `resources.py`. Every request is noted in `calls`
(method, path, `anthropic-beta`) so tests can prove what reached the upstream.
Knobs come from `SimConfig` and per-request `x-sim-…` headers (see `config.py`).
For non-streaming requests, `fail=overloaded` answers 529, `fail=truncate` sends half of the
JSON body and ends, and `fail=hang` never answers.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from api.simulator.config import KnobError, SimConfig, apply_header_overrides
from api.simulator.extras import ExtraOutput, content_blocks, content_events, plan_output
from api.simulator.request import SimError, SimRequest, invalid, parse_request
from api.simulator.resources import ResourceError, SimResources, is_resource_path

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"

# Token i of every answer is TOKENS[i % 16]: fifteen words, then a newline.
WORDS = (
    "Hello", "from", "the", "simulated", "upstream", "every", "token", "here",
    "is", "one", "word", "so", "counting", "stays", "easy",
)  # fmt: skip
TOKENS: tuple[str, ...] = (*(" " + word for word in WORDS), "\n")


def _sse(event: str, data: str) -> bytes:
    return f"event: {event}\ndata: {data}\n\n".encode()


def _body(chunk: bytes, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": more}


_DELTA_MESSAGES: tuple[Message, ...] = tuple(
    _body(
        _sse(
            "content_block_delta",
            '{"type":"content_block_delta","index":0,'
            f'"delta":{{"type":"text_delta","text":{json.dumps(token)}}}}}',
        )
    )
    for token in TOKENS
)
_BLOCK_START = _body(
    _sse(
        "content_block_start",
        '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    )
)
_PING = _body(_sse("ping", '{"type":"ping"}'))
_BLOCK_STOP = _body(_sse("content_block_stop", '{"type":"content_block_stop","index":0}'))
_MESSAGE_STOP = _body(_sse("message_stop", '{"type":"message_stop"}'), more=False)
_OVERLOADED_EVENT = _body(
    _sse("error", '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
)
_END = _body(b"", more=False)
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_JSON_CONTENT_TYPE = (b"content-type", b"application/json")


def _scan_headers(raw: list[tuple[bytes, bytes]]) -> tuple[bool, dict[str, str]]:
    """Whether an API key is present, and the `x-sim-…` headers."""
    has_key = False
    knobs: dict[str, str] = {}
    for name, value in raw:
        if name == b"x-api-key":
            has_key = has_key or bool(value.strip())
        elif name == b"authorization":
            scheme, _, token = value.partition(b" ")
            has_key = has_key or (scheme.lower() == b"bearer" and bool(token.strip()))
        elif name.startswith(b"x-sim-"):
            knobs[name.decode("latin-1")] = value.decode("latin-1")
    return has_key, knobs


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):  # also ends on http.disconnect
            return b"".join(chunks)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _send_json(
    send: Send, status: int, body: bytes, request_id: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    length = (b"content-length", str(len(body)).encode())
    headers = [_JSON_CONTENT_TYPE, length, (b"request-id", request_id), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(_body(body, more=False))


def _error_body(error: SimError, request_id: bytes) -> bytes:
    payload = {
        "type": "error",
        "error": {"type": error.error_type, "message": error.message},
        "request_id": request_id.decode(),
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def _status_error(status: int) -> SimError:
    message = "Overloaded" if status == 529 else f"Simulated error status {status}"
    headers = [(b"retry-after", b"1")] if status == 429 else []
    return SimError(status, message, headers)


@dataclass(frozen=True, slots=True)
class _Answer:
    """What the simulated model answers to one request, with its usage as JSON fragments."""

    model: str  # JSON-encoded
    output_tokens: int
    stop_reason: str
    sent_before_failing: int
    usage: str  # input_tokens, cache_creation_input_tokens, cache_read_input_tokens
    cache_creation: str  # "cache_creation":{...}
    server_tool_use: str  # ',"server_tool_use":{...}' or ""
    extra: ExtraOutput | None = None  # tool calls or structured output
    tier: str = '"service_tier":"standard","inference_geo":"global","speed":"standard"'

    def final_usage(self, *, full: bool) -> str:
        """message_delta usage (cumulative), or with `full` the non-streaming message's."""
        if not full:
            return f'{{{self.usage},"output_tokens":{self.output_tokens}{self.server_tool_use}}}'
        return (
            f'{{{self.usage},{self.cache_creation},"output_tokens":{self.output_tokens}'
            f"{self.server_tool_use},{self.tier}}}"
        )


def _answer(request: SimRequest, k: SimConfig, ids: str) -> _Answer:
    n = min(k.output_tokens, request.max_tokens)
    stop_reason = "max_tokens" if k.output_tokens >= request.max_tokens else "end_turn"
    extra = None
    if request.extras is not None:
        extra = plan_output(request.extras, k.tool_calls, k.output_tokens, request.max_tokens, ids)
        n, stop_reason = extra.output_tokens, extra.stop_reason
    input_tokens = request.input_tokens if k.input_tokens is None else k.input_tokens
    written = k.cache_write_5m_tokens + k.cache_write_1h_tokens
    searches = k.web_search_requests
    return _Answer(
        model=json.dumps(request.model),
        output_tokens=n,
        stop_reason=stop_reason,
        sent_before_failing=n // 2 if k.fail_after is None else min(k.fail_after, n),
        usage=f'"input_tokens":{input_tokens},"cache_creation_input_tokens":{written},'
        f'"cache_read_input_tokens":{k.cache_read_tokens}',
        cache_creation=f'"cache_creation":{{"ephemeral_5m_input_tokens":{k.cache_write_5m_tokens},'
        f'"ephemeral_1h_input_tokens":{k.cache_write_1h_tokens}}}',
        server_tool_use=f',"server_tool_use":{{"web_search_requests":{searches}}}'
        if searches
        else "",
        extra=extra,
        tier=f'"service_tier":"standard","inference_geo":"{request.inference_geo}",'
        f'"speed":"{request.speed}"',
    )


def _message_start(a: _Answer, message_id: str) -> bytes:
    return _sse(
        "message_start",
        f'{{"type":"message_start","message":{{"id":"{message_id}","type":"message",'
        f'"role":"assistant","content":[],"model":{a.model},"stop_reason":null,'
        f'"stop_sequence":null,"usage":{{{a.usage},{a.cache_creation},"output_tokens":1,'
        f"{a.tier}}}}}}}",
    )


def _message_delta(a: _Answer) -> bytes:
    return _sse(
        "message_delta",
        f'{{"type":"message_delta","delta":{{"stop_reason":"{a.stop_reason}",'
        f'"stop_sequence":null}},"usage":{a.final_usage(full=False)}}}',
    )


def _message_json(a: _Answer, message_id: str) -> bytes:
    if a.extra is not None:
        content = json.dumps(content_blocks(a.extra, TOKENS))
    else:
        text = "".join(TOKENS[i % 16] for i in range(a.output_tokens))
        content = f'[{{"type":"text","text":{json.dumps(text)}}}]'
    return (
        f'{{"id":"{message_id}","type":"message","role":"assistant","model":{a.model},'
        f'"content":{content},'
        f'"stop_reason":"{a.stop_reason}","stop_sequence":null,'
        f'"usage":{a.final_usage(full=True)}}}'
    ).encode()


async def _pause(watcher: asyncio.Future[None] | None, delay_ms: float) -> bool:
    """Sleep `delay_ms`; False when the client went away meanwhile."""
    if watcher is None or delay_ms <= 0:
        return not (watcher is not None and watcher.done())
    await asyncio.wait((watcher,), timeout=delay_ms / 1000)
    return not watcher.done()


async def _stream(
    answer: _Answer, knobs: SimConfig, ids: str, receive: Receive, send: Send
) -> None:
    headers = [*_SSE_HEADERS, (b"request-id", f"req_sim_{ids}".encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send(_body(_message_start(answer, f"msg_sim_{ids}")))
    if answer.extra is not None:  # tool calls or structured output: no delay or fail knobs
        for event in content_events(answer.extra, TOKENS):
            await send(_body(event))
        await send(_body(_message_delta(answer)))
        await send(_MESSAGE_STOP)
        return
    await send(_BLOCK_START)
    await send(_PING)
    watcher: asyncio.Future[None] | None = None
    if knobs.ttft_ms > 0 or knobs.token_delay_ms > 0:
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        failing = knobs.fail in ("overloaded", "truncate")
        limit = answer.sent_before_failing if failing else answer.output_tokens
        for i in range(limit):
            if not await _pause(watcher, knobs.ttft_ms if i == 0 else knobs.token_delay_ms):
                return
            await send(_DELTA_MESSAGES[i % 16])
        if knobs.fail == "overloaded":
            await send(_OVERLOADED_EVENT)
        if failing:
            await send(_END)
            return
        await send(_BLOCK_STOP)
        await send(_body(_message_delta(answer)))
        await send(_MESSAGE_STOP)
    finally:
        if watcher is not None:
            watcher.cancel()


@dataclass(frozen=True, slots=True)
class SimCall:
    method: str
    path: str
    beta: str | None  # the anthropic-beta header, if any


def _batch_message(raw: bytes, message_id: str) -> dict[str, Any]:
    """A batch request's Message (its params as JSON bytes); ValueError if they are invalid."""
    try:
        request = parse_request(raw, count_only=False)
    except SimError as error:
        raise ValueError(error.message) from None
    answer = _answer(request, SimConfig(), message_id)
    message: dict[str, Any] = json.loads(_message_json(answer, message_id))
    return message


class SimulatorApp:
    """The ASGI callable; one instance per server, holding its config, id sequence, batches,
    files and the log of recent calls."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self._id_prefix = secrets.token_hex(8)
        self._counter = itertools.count()
        self.resources = SimResources(_batch_message)
        self.calls: collections.deque[SimCall] = collections.deque(maxlen=100_000)

    def _knobs(self, scope: Scope) -> SimConfig:
        """The effective knobs of a request (401 without an API key, 400 for a bad knob)."""
        has_key, knob_headers = _scan_headers(scope["headers"])
        if not has_key:
            raise SimError(401, "x-api-key header is required")
        try:
            return (
                apply_header_overrides(self.config, knob_headers) if knob_headers else self.config
            )
        except KnobError as error:
            raise invalid(f"Invalid header {error.header}: {error.message}") from None

    def _next_ids(self) -> str:
        return f"{self._id_prefix}{next(self._counter) & 0xFFFFFFFF:08x}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        ids = self._next_ids()
        try:
            await self._route(scope, receive, send, ids)
        except SimError as error:
            request_id = f"req_sim_{ids}".encode()
            await _send_json(
                send, error.status, _error_body(error, request_id), request_id, error.headers
            )

    async def _route(self, scope: Scope, receive: Receive, send: Send, ids: str) -> None:
        path: str = scope["path"]
        beta = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"anthropic-beta"), None
        )
        self.calls.append(SimCall(scope["method"], path, beta))
        if is_resource_path(path):
            knobs = self._knobs(scope)
            if knobs.status is not None:
                raise _status_error(knobs.status)
            try:
                await self.resources.handle(scope, receive, send, knobs, f"req_sim_{ids}".encode())
            except ResourceError as error:
                raise SimError(error.status, error.message) from None
            return
        if path not in (MESSAGES_PATH, COUNT_TOKENS_PATH):
            raise SimError(404, f"Not found: {path}")
        if scope["method"] != "POST":
            raise SimError(405, f"Method {scope['method']} not allowed", [(b"allow", b"POST")])
        knobs = self._knobs(scope)
        request = parse_request(await _read_body(receive), count_only=path == COUNT_TOKENS_PATH)
        if knobs.status is not None:
            raise _status_error(knobs.status)
        if path == COUNT_TOKENS_PATH:
            tokens = request.input_tokens if knobs.input_tokens is None else knobs.input_tokens
            body = f'{{"input_tokens":{tokens}}}'.encode()
            await _send_json(send, 200, body, f"req_sim_{ids}".encode(), [])
            return
        if knobs.fail == "hang":
            await _wait_disconnect(receive)
            return
        answer = _answer(request, knobs, ids)
        if request.stream:
            await _stream(answer, knobs, ids, receive, send)
        else:
            await _respond(answer, knobs.fail, ids, send)


async def _respond(answer: _Answer, fail: str | None, ids: str, send: Send) -> None:
    if fail == "overloaded":
        raise _status_error(529)
    body = _message_json(answer, f"msg_sim_{ids}")
    request_id = f"req_sim_{ids}".encode()
    if fail != "truncate":
        await _send_json(send, 200, body, request_id, [])
        return
    headers = [_JSON_CONTENT_TYPE, (b"request-id", request_id)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send(_body(body[: len(body) // 2]))
    await send(_END)


def create_simulator_app(config: SimConfig = SimConfig()) -> ASGIApp:  # noqa: B008
    """Build the simulated-upstream ASGI app with `config` as the server-wide knob defaults."""
    return SimulatorApp(config)
