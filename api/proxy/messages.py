"""`POST /v1/messages` and `POST /v1/messages/count_tokens`, Anthropic-compatible."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.auth.tenant import Caller, authenticate
from api.errors import REQUEST_ID_HEADER
from api.files import check_file_refs, file_ids_in, might_name_files
from api.http.body import read_body
from api.http.docs import COUNT_TOKENS_BODY, MESSAGES_BODY, json_body
from api.http.forwarding import forwarded_headers
from api.http.jsonbody import parse_json_object
from api.http.throttle import get_auth_throttle
from api.proxy.relay import RelayResponse
from api.proxy.request import check_model, check_tools, parse_messages_request
from api.proxy.service import begin, call_whole, start_stream
from api.proxy.upstream import read_whole
from api.quotas.plans import check_model_allowed
from api.quotas.rpm import take_request
from api.state import AppState, State, get_state

router = APIRouter(tags=["tenant"])


@router.post("/v1/messages", response_model=None, openapi_extra=json_body(MESSAGES_BODY))
async def create_message(request: Request, caller: Caller, state: State) -> Response:
    raw = await read_body(request, state.settings.max_body_bytes)
    parsed = parse_messages_request(raw)
    if might_name_files(raw):  # a file the caller does not own: 404, nothing spent or sent
        await check_file_refs(state.engine, caller.tenant_id, file_ids_in(parsed.body))
    metered = await begin(
        state,
        caller,
        parsed.model,
        parsed.user,
        "messages",
        raw_body=raw,
        body=parsed.body,
        max_tokens=parsed.max_tokens,
    )
    rid = str(metered.ctx.request_id)
    request.state.request_id = rid
    headers = {**metered.ctx.headers, REQUEST_ID_HEADER: rid}
    upstream_headers = forwarded_headers(request.headers, simulated=state.simulated)
    async with metered:
        if not parsed.stream:
            whole = await call_whole(state, metered, raw, upstream_headers)
            return Response(whole.body, whole.status, {**headers, **whole.headers})
        stream = await start_stream(state, metered, raw, upstream_headers)
    if stream.upstream_request_id:
        headers["request-id"] = stream.upstream_request_id
    return RelayResponse(stream, headers)


async def create_message_hot(request: Request) -> Response:
    """The same route, served by api/http/hot.py: its dependencies resolved by hand."""
    state: AppState = await get_state(request)
    caller = await authenticate(request, state, await get_auth_throttle(request))
    return await create_message(request, caller, state)


@router.post(
    "/v1/messages/count_tokens",
    response_model=None,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    openapi_extra=json_body(COUNT_TOKENS_BODY),
)
async def count_tokens(request: Request, caller: Caller, state: State) -> Response:
    """Forwarded as is; not billed and not in the ledger, but governed: the model must be on
    the caller's plan and each call counts against the key's requests per minute. Upstream
    failures answer as their exceptions say (api/proxy/upstream.py)."""
    raw = await read_body(request, state.settings.max_body_bytes)
    body = parse_json_object(raw)
    model = check_model(body.get("model"))
    check_model_allowed(caller, model)
    check_tools(body)
    await take_request(state.engine, caller.tenant_id, caller.key_id)
    upstream_headers = forwarded_headers(request.headers, simulated=state.simulated)
    timeout = float(state.settings.upstream_timeout_s)
    response, content = await read_whole(
        state.upstream, "/v1/messages/count_tokens", raw, upstream_headers, timeout
    )
    return Response(content, response.status_code, {"content-type": "application/json"})
