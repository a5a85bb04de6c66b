"""`/v1/files…`, Anthropic's Files API, scoped to the caller's tenant: uploads are streamed to
the upstream and recorded as the caller's; every other route answers 404 for a file the caller
does not own, before anything is sent upstream. `anthropic-beta` is passed through."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from api.auth.tenant import Caller
from api.errors import InvalidRequest
from api.files import repository, service
from api.http.docs import FILE_UPLOAD_BODY
from api.http.forwarding import forwarded_headers
from api.pagination import PageError, paginate
from api.passthrough import Refused, open_upstream, read_json, relay_stream
from api.state import State

router = APIRouter(tags=["tenant"])


@router.post("/v1/files", response_model=None, openapi_extra=FILE_UPLOAD_BODY)
async def upload_file(request: Request, caller: Caller, state: State) -> Response:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequest("content-type: expected multipart/form-data")
    headers = forwarded_headers(request.headers, simulated=state.simulated)
    headers["content-type"] = content_type
    declared = request.headers.get("content-length")
    created = await service.upload(
        state.engine,
        state.upstream,
        caller,
        request.stream(),
        headers,
        declared=int(declared) if declared and declared.isdigit() else None,
        max_bytes=state.settings.files_max_bytes,
        quota_bytes=state.settings.files_quota_bytes,
    )
    if isinstance(created, Refused):
        return created.response()
    return JSONResponse(created)


@router.get("/v1/files", response_model=None)
async def list_files(request: Request, caller: Caller, state: State) -> Response:
    async with state.engine.connect() as conn:
        rows = await repository.list_all(conn, caller.tenant_id)
    try:
        page = paginate([r.to_json() for r in rows], request.query_params, cursor=True)
    except PageError as exc:
        raise InvalidRequest(str(exc)) from None
    return JSONResponse(page)


@router.get("/v1/files/{file_id}", response_model=None)
async def file_metadata(file_id: str, request: Request, caller: Caller, state: State) -> Response:
    await service.owned(state.engine, caller, file_id)
    headers = forwarded_headers(request.headers, simulated=state.simulated)
    found = await read_json(state.upstream, "GET", f"/v1/files/{file_id}", headers=headers)
    return found.response() if isinstance(found, Refused) else JSONResponse(found)


@router.delete("/v1/files/{file_id}", response_model=None)
async def delete_file(file_id: str, request: Request, caller: Caller, state: State) -> Response:
    await service.owned(state.engine, caller, file_id)
    headers = forwarded_headers(request.headers, simulated=state.simulated)
    deleted = await read_json(state.upstream, "DELETE", f"/v1/files/{file_id}", headers=headers)
    if isinstance(deleted, Refused) and deleted.status != 404:
        return deleted.response()
    async with state.engine.begin() as conn:
        await repository.mark_deleted(conn, caller.tenant_id, file_id)
    if isinstance(deleted, Refused):
        return deleted.response()
    return JSONResponse(deleted)


@router.get("/v1/files/{file_id}/content", response_model=None)
async def file_content(file_id: str, request: Request, caller: Caller, state: State) -> Response:
    await service.owned(state.engine, caller, file_id)
    headers = forwarded_headers(request.headers, simulated=state.simulated)
    opened = await open_upstream(
        state.upstream, "GET", f"/v1/files/{file_id}/content", headers=headers
    )
    if isinstance(opened, Refused):
        return opened.response()
    return relay_stream(
        opened, ("content-type", "content-length", "content-disposition", "request-id")
    )
