"""`/v1/messages/batches…`, Anthropic's Message Batches API, scoped to the caller's tenant.

Creation admits and reserves the whole batch before anything goes upstream. Every other route
answers 404 for a batch the caller does not own, before anything is sent upstream. Results are
relayed as the upstream sends them (never held whole) and start the settler."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from api.auth.tenant import Caller
from api.batches import repository
from api.batches.admission import admit, parse_batch
from api.batches.repository import BatchRow
from api.batches.settle import settle_batch
from api.batches.settler import BatchSettler
from api.errors import BadGateway, InvalidRequest, NotFound
from api.http.body import read_body
from api.http.docs import BATCH_BODY, json_body
from api.http.forwarding import forwarded_headers
from api.http.jsonbody import parse_json_object
from api.pagination import PageError, paginate
from api.passthrough import Refused, open_upstream, read_json, relay_stream
from api.state import State

router = APIRouter(tags=["tenant"])
BATCHES = "/v1/messages/batches"
_LIST_FETCHES = 8  # upstream lookups in flight for one list page


async def get_settler(request: Request) -> BatchSettler:
    settler: BatchSettler = request.app.state.batch_settler
    return settler


Settler = Annotated[BatchSettler, Depends(get_settler)]


def _ours(batch: dict[str, Any], request: Request) -> dict[str, Any]:
    """The upstream's batch object, with `results_url` pointing at Tollgate."""
    if batch.get("results_url"):
        base = str(request.base_url).rstrip("/")
        batch["results_url"] = f"{base}{BATCHES}/{batch['id']}/results"
    return batch


async def _owned(state: State, caller: Caller, batch_id: str) -> BatchRow:
    found = await repository.owned(state.engine, caller.tenant_id, batch_id)
    if found is None:
        raise NotFound(f"message_batch {batch_id!r} not found")
    return found


@router.post(BATCHES, response_model=None, openapi_extra=json_body(BATCH_BODY))
async def create_batch(request: Request, caller: Caller, state: State) -> Response:
    raw = await read_body(request, state.settings.batch_max_body_bytes)
    body = parse_json_object(raw)  # strict: a duplicate key would be priced one way, sent another
    requests = parse_batch(body, state.prices.book, caller, datetime.now(UTC))
    batch_id, quota_headers = await admit(state, caller, body, requests)
    headers = forwarded_headers(request.headers, simulated=state.simulated)
    headers["content-type"] = "application/json"
    try:
        created = await read_json(state.upstream, "POST", BATCHES, headers=headers, content=raw)
    except BadGateway:
        await repository.release(state.engine, batch_id, "failed")
        raise
    if isinstance(created, Refused):
        await repository.release(state.engine, batch_id, "failed")
        return created.response()
    await repository.submitted(state.engine, batch_id, str(created["id"]))
    return JSONResponse(_ours(created, request), headers=quota_headers)


@router.get(BATCHES, response_model=None)
async def list_batches(request: Request, caller: Caller, state: State) -> Response:
    rows = await repository.list_owned(state.engine, caller.tenant_id)
    try:
        page = paginate([{"id": r.upstream_id} for r in rows], request.query_params)
    except PageError as exc:
        raise InvalidRequest(str(exc)) from None
    headers = forwarded_headers(request.headers, simulated=state.simulated)
    gate = asyncio.Semaphore(_LIST_FETCHES)

    async def fetch(batch_id: str) -> dict[str, Any]:
        async with gate:
            found = await read_json(state.upstream, "GET", f"{BATCHES}/{batch_id}", headers=headers)
        if isinstance(found, Refused):
            raise BadGateway(f"the upstream could not describe batch {batch_id}")
        return _ours(found, request)

    page["data"] = list(await asyncio.gather(*(fetch(item["id"]) for item in page["data"])))
    return JSONResponse(page)


async def _batch_object(
    state: State, caller: Caller, request: Request, method: str, path: str
) -> Response:
    """The upstream's answer to `method path` about an owned batch: its batch object."""
    await _owned(state, caller, request.path_params["batch_id"])
    headers = forwarded_headers(request.headers, simulated=state.simulated)
    found = await read_json(state.upstream, method, path, headers=headers)
    return found.response() if isinstance(found, Refused) else JSONResponse(_ours(found, request))


@router.get(BATCHES + "/{batch_id}", response_model=None)
async def get_batch(batch_id: str, request: Request, caller: Caller, state: State) -> Response:
    return await _batch_object(state, caller, request, "GET", f"{BATCHES}/{batch_id}")


@router.post(BATCHES + "/{batch_id}/cancel", response_model=None)
async def cancel_batch(batch_id: str, request: Request, caller: Caller, state: State) -> Response:
    return await _batch_object(state, caller, request, "POST", f"{BATCHES}/{batch_id}/cancel")


@router.delete(BATCHES + "/{batch_id}", response_model=None)
async def delete_batch(batch_id: str, request: Request, caller: Caller, state: State) -> Response:
    """Settled first (the results are gone once the upstream deletes the batch)."""
    batch = await _owned(state, caller, batch_id)
    headers = forwarded_headers(request.headers, simulated=state.simulated)
    if batch.state == "submitted":
        found = await read_json(state.upstream, "GET", f"{BATCHES}/{batch_id}", headers=headers)
        if isinstance(found, dict) and found.get("processing_status") == "ended":
            await settle_batch(state.engine, state.upstream, state.prices.book, batch)
    deleted = await read_json(state.upstream, "DELETE", f"{BATCHES}/{batch_id}", headers=headers)
    if isinstance(deleted, Refused):
        return deleted.response()
    await repository.mark_deleted(state.engine, batch.id)
    return JSONResponse(deleted)


@router.get(BATCHES + "/{batch_id}/results", response_model=None)
async def batch_results(
    batch_id: str, request: Request, caller: Caller, state: State, settler: Settler
) -> Response:
    await _owned(state, caller, batch_id)
    settler.kick()
    headers = forwarded_headers(request.headers, simulated=state.simulated)
    opened = await open_upstream(
        state.upstream, "GET", f"{BATCHES}/{batch_id}/results", headers=headers
    )
    if isinstance(opened, Refused):
        return opened.response()
    return relay_stream(opened, ("content-type", "request-id"))
