"""`POST /chat`: the simple endpoint. `{message | messages, system?, model?, max_tokens?, user?}`
in; SSE events `start`, `delta` {text}, `usage` (with `cost_usd`), `done` {stop_reason}, or
`error` {type, message} out. Text travels as JSON so tokens with newlines survive."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.auth.tenant import Caller
from api.errors import REQUEST_ID_HEADER, InvalidRequest
from api.http.body import read_body
from api.http.docs import CHAT_BODY, json_body
from api.http.forwarding import forwarded_headers
from api.http.jsonbody import parse_json_object
from api.inputs import check_user_id
from api.metering.meter import text_of_delta
from api.metering.sse import SSEScanner
from api.pricing.cost import format_usd
from api.proxy.relay import STREAM_HEADERS
from api.proxy.request import check_max_tokens, check_model
from api.proxy.service import begin, start_stream
from api.proxy.stream import MeteredStream
from api.state import State

router = APIRouter(tags=["tenant"])

DEFAULT_MAX_TOKENS = 1024
_TEXT_EVENTS = frozenset({b"content_block_delta", b"error"})


def build_upstream_body(
    body: dict[str, Any], default_model: str
) -> tuple[dict[str, Any], str | None]:
    """The Anthropic Messages body for a /chat request, and the end user it names."""
    message, messages = body.get("message"), body.get("messages")
    if messages is None:
        if not isinstance(message, str) or not message:
            raise InvalidRequest("message: Field required (or give messages)")
        messages = [{"role": "user", "content": message}]
    elif not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: must be a non-empty list")
    given = body.get("model")
    model = default_model if given is None else check_model(given)
    max_tokens = check_max_tokens(body.get("max_tokens", DEFAULT_MAX_TOKENS))
    upstream: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": messages,
        "stream": True,
    }
    system = body.get("system")
    if system is not None:
        if not isinstance(system, str | list):
            raise InvalidRequest("system: must be a string or a list of content blocks")
        upstream["system"] = system
    user = check_user_id(body["user"], "user") if body.get("user") is not None else None
    if user is not None:
        upstream["metadata"] = {"user_id": user}
    return upstream, user


def _event(name: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(data), event=name)


async def chat_events(call: MeteredStream) -> AsyncIterator[ServerSentEvent]:
    scanner = SSEScanner(only=_TEXT_EVENTS)
    finished = False
    try:
        yield _event("start", {"request_id": str(call.ctx.request_id), "model": call.ctx.model})
        async for chunk in call.relay():
            for name, data in scanner.feed(chunk):
                text = text_of_delta(data) if name == b"content_block_delta" else None
                if text:
                    yield _event("delta", {"text": text})
        settlement = await call.finished()
        finished = True
        meter = call.meter
        if meter.error_type is not None or settlement is None:
            message = meter.error_message or "the upstream stream failed"
            yield _event("error", {"type": meter.error_type or "api_error", "message": message})
            return
        if not meter.complete:
            yield _event("error", {"type": "api_error", "message": "the stream ended early"})
        yield _event(
            "usage",
            {
                "input_tokens": settlement.input_tokens,
                "output_tokens": settlement.output_tokens,
                "cache_creation_input_tokens": settlement.cache_write_5m_tokens
                + settlement.cache_write_1h_tokens,
                "cache_read_input_tokens": settlement.cache_read_tokens,
                "cost_usd": format_usd(settlement.cost_usd),
            },
        )
        if meter.complete:
            yield _event("done", {"stop_reason": meter.stop_reason})
    finally:
        if not finished:
            call.disconnect()


@router.post("/chat", response_model=None, openapi_extra=json_body(CHAT_BODY))
async def chat(request: Request, caller: Caller, state: State) -> EventSourceResponse:
    raw = await read_body(request, state.settings.max_body_bytes)
    upstream_body, user = build_upstream_body(parse_json_object(raw), state.settings.default_model)
    upstream_raw = json.dumps(upstream_body).encode()
    metered = await begin(
        state,
        caller,
        upstream_body["model"],
        user,
        "chat",
        raw_body=upstream_raw,
        body=upstream_body,
        max_tokens=upstream_body["max_tokens"],
    )
    rid = str(metered.ctx.request_id)
    request.state.request_id = rid
    headers = forwarded_headers(request.headers, simulated=state.simulated)
    async with metered:
        stream = await start_stream(state, metered, upstream_raw, headers)
    sse_headers = {k: v for k, v in STREAM_HEADERS.items() if k != "content-type"}
    return EventSourceResponse(
        chat_events(stream),
        headers={**sse_headers, **metered.ctx.headers, REQUEST_ID_HEADER: rid},
        ping=15,
    )
