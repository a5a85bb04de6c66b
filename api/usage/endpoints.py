"""`GET /v1/usage`: the calling tenant's spend this period, overall and per end user; with any
of `group_by`, `from`, `to`, `user`, `model`, `key_id`, `endpoint` or `format`, a usage report
over the caller's tenant instead (the shape of `GET /admin/usage`: `rows` and `total`, or CSV).
Any other parameter is a 400 (but `_`, a cache-buster). A key bound to an end user sees only
that user: its row of `users`, and reports confined to its user."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams

from api.auth.tenant import Caller
from api.reports.http import csv_response
from api.reports.params import TENANT_PARAMS, parse_report, report_parameters
from api.reports.query import Format
from api.state import State
from api.usage import repository
from api.usage.schemas import TenantUsage
from api.usage.service import current_usage

router = APIRouter(tags=["tenant"])


_PARAMETERS = [
    *report_parameters(TENANT_PARAMS),
    {
        "name": "_",
        "in": "query",
        "required": False,
        "description": "ignored (a cache-buster)",
        "schema": {"type": "string"},
    },
]


@router.get(
    "/v1/usage",
    response_model=None,
    responses={200: {"model": TenantUsage}},
    openapi_extra={"parameters": _PARAMETERS},
)
async def get_usage(request: Request, caller: Caller, state: State) -> Response:
    # Every parameter is checked, so `?tenant_id=<other>` or a typo is a 400, never ignored;
    # only `_`, the usual cache-buster, is let through.
    params = QueryParams([(k, v) for k, v in request.query_params.multi_items() if k != "_"])
    query = parse_report(params, TENANT_PARAMS)
    if not params:
        async with state.sessions() as session, session.begin():
            usage = await current_usage(session, caller)
        return JSONResponse(usage.model_dump(mode="json"))
    if query.format is Format.csv:
        return await csv_response(query, repository.usage_csv(state.engine.url, caller, query))
    async with state.engine.connect() as conn:
        body = await repository.usage_report(conn, caller, query)
    return Response(body, media_type="application/json")
