"""`POST /v1/chat/completions`: OpenAI's API on top of the /v1/messages request path.

The body is translated to an Anthropic Messages body first (refusals are 400s before anything
is reserved); then admission, reservation, quotas, the upstream call, metering, the ledger row
(endpoint `chat_completions`) and the disconnect rules are exactly those of /v1/messages.
Every error on this route, ours or the upstream's, is rendered in OpenAI's error shape."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.auth.tenant import Caller, authenticate
from api.errors import REQUEST_ID_HEADER, TollgateError
from api.http.body import read_body
from api.http.docs import CHAT_COMPLETIONS_BODY, json_body
from api.http.forwarding import forwarded_headers
from api.http.throttle import get_auth_throttle
from api.ledger.metered import MeteredRequest
from api.openai.errors import OpenAIRequestError, error_json, translate_error_body
from api.openai.jsonbody import dumps, parse_strict_object
from api.openai.relay import ChunkStreamResponse
from api.openai.request import ChatRequest, translate_request
from api.openai.response import translate_message
from api.openai.routing import OpenAIRoute, json_response, openai_error_response
from api.openai.stream import ChunkTranslator
from api.proxy.service import begin, call_whole, start_stream
from api.proxy.upstream import UpstreamRefused
from api.state import AppState, State, get_state

ENDPOINT = "chat_completions"
_KEPT_ERROR_HEADERS = ("retry-after", "request-id")


router = APIRouter(tags=["tenant"], route_class=OpenAIRoute)


def _refused(status: int, body: bytes, headers: dict[str, str], rid: str) -> Response:
    openai_status, openai_body = translate_error_body(status, body)
    kept = {k: v for k, v in headers.items() if k in _KEPT_ERROR_HEADERS}
    return json_response(openai_status, openai_body, {**kept, REQUEST_ID_HEADER: rid})


@router.post(
    "/v1/chat/completions", response_model=None, openapi_extra=json_body(CHAT_COMPLETIONS_BODY)
)
async def chat_completions(request: Request, caller: Caller, state: State) -> Response:
    raw = await read_body(request, state.settings.max_body_bytes)
    chat = translate_request(parse_strict_object(raw))
    upstream_raw = dumps(chat.body)
    metered = await begin(
        state,
        caller,
        chat.model,
        chat.user,
        ENDPOINT,
        raw_body=upstream_raw,
        body=chat.body,
        max_tokens=chat.max_tokens,
    )
    rid = str(metered.ctx.request_id)
    request.state.request_id = rid
    upstream_headers = forwarded_headers(request.headers, simulated=state.simulated)
    headers = {**metered.ctx.headers, REQUEST_ID_HEADER: rid}
    try:
        async with metered:
            if not chat.stream:
                return await _whole(state, metered, chat, upstream_raw, upstream_headers, headers)
            stream = await start_stream(state, metered, upstream_raw, upstream_headers)
    except UpstreamRefused as refused:  # settled by the owner; answered in OpenAI's shape
        return _refused(refused.status, refused.upstream_body, refused.headers, rid)
    if stream.upstream_request_id:
        headers["request-id"] = stream.upstream_request_id
    translator = ChunkTranslator(
        chat.model, stream.meter, include_usage=chat.include_usage, answer_tool=chat.answer_tool
    )
    return ChunkStreamResponse(stream, translator, headers)


async def chat_completions_hot(request: Request) -> Response:
    """The same route, served by api/http/hot.py: its dependencies resolved by hand and its
    errors rendered as OpenAIRoute renders them."""
    try:
        state = await get_state(request)
        caller = await authenticate(request, state, await get_auth_throttle(request))
        return await chat_completions(request, caller, state)
    except (OpenAIRequestError, TollgateError) as exc:
        response = openai_error_response(request, exc, openai=True)
        if response is None:
            raise
        return response


async def _whole(
    state: AppState,
    metered: MeteredRequest,
    chat: ChatRequest,
    upstream_raw: bytes,
    upstream_headers: dict[str, str],
    headers: dict[str, str],
) -> Response:
    whole = await call_whole(state, metered, upstream_raw, upstream_headers)
    rid = headers[REQUEST_ID_HEADER]
    if whole.status != 200:
        return _refused(whole.status, whole.body, whole.headers, rid)
    try:
        message = json.loads(whole.body)
    except ValueError:
        message = None
    if not isinstance(message, dict) or message.get("type") != "message":
        body = error_json("the upstream reply was incomplete", "server_error", None, None)
        return json_response(502, body, headers)
    if "request-id" in whole.headers:
        headers["request-id"] = whole.headers["request-id"]
    completion = translate_message(message, chat.model, chat.answer_tool)
    return json_response(200, dumps(completion), headers)
