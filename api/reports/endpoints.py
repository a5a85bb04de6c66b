"""`GET /admin/usage`: usage across tenants, as JSON rows and totals or as a CSV download.
The admin check is on the router, as for every `/admin` route."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from api.auth.admin import require_admin
from api.reports.http import csv_response
from api.reports.params import ADMIN_PARAMS, parse_report, report_parameters
from api.reports.query import Format
from api.reports.repository import usage_csv, usage_report
from api.state import State

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

_PARAMETERS = report_parameters(ADMIN_PARAMS)


@router.get("/usage", response_model=None, openapi_extra={"parameters": _PARAMETERS})
async def get_usage(request: Request, state: State) -> Response:
    query = parse_report(request.query_params)
    if query.format is Format.csv:
        return await csv_response(query, usage_csv(state.engine.url, query))
    async with state.engine.connect() as conn:
        body = await usage_report(conn, query)
    return Response(body, media_type="application/json")
