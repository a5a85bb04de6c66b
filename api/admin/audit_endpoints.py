"""`GET /admin/audit`: the audit log, newest first, with filters (see api/audit/query.py).
There is no route that edits or deletes it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from api.audit.query import PARAMETER_SCHEMAS, PARAMETERS, entries, parse_filter
from api.auth.admin import require_admin
from api.errors import InvalidRequest
from api.state import State

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": PARAMETER_SCHEMAS[name]}
    for name in PARAMETERS
]


@router.get("/audit", openapi_extra={"parameters": _PARAMETERS})
async def get_audit(request: Request, state: State) -> dict[str, list[dict[str, Any]]]:
    params = request.query_params
    repeated = [name for name in params if len(params.getlist(name)) > 1]
    if repeated:
        raise InvalidRequest(f"{repeated[0]}: given more than once")
    audit_filter = parse_filter(dict(params))
    async with state.engine.connect() as conn:
        return {"data": await entries(conn, audit_filter)}
