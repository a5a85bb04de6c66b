"""`GET /v1/usage`: the calling tenant's spend this period, overall and per end user."""

from __future__ import annotations

from fastapi import APIRouter

from api.keys.auth import Caller
from api.state import State
from api.usage.schemas import TenantUsage
from api.usage.service import current_usage

router = APIRouter(tags=["tenant"])


@router.get("/v1/usage")
async def get_usage(caller: Caller, state: State) -> TenantUsage:
    async with state.sessions() as session, session.begin():
        return await current_usage(session, caller)
