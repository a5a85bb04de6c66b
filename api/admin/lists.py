"""Read-only `/admin/*` routes the console needs: who the caller is (`/admin/whoami`), the plans,
and a tenant's end users with their limits and this period's spend. Reads change nothing, so
they record nothing in the audit log; a viewer token may call them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import select, text

from api.admin import service
from api.admin.schemas import PlanOut
from api.auth.admin import Admin, require_admin
from api.db.models import Plan
from api.money import UsdOut
from api.state import State

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])

# Each end user of the tenant, with the spend counter of the period in force now (if any).
_USERS = text(
    """
    SELECT u.external_id AS user, u.monthly_budget_usd, u.created_at,
           c.spent_usd, c.requests, c.period_start, c.period_end
    FROM end_users u
    LEFT JOIN LATERAL (
        SELECT spent_usd, requests, period_start, period_end FROM spend_counters s
        WHERE s.tenant_id = u.tenant_id AND s.end_user_id = u.id AND s.period_end > now()
        ORDER BY s.period_start DESC LIMIT 1
    ) c ON true
    WHERE u.tenant_id = :tenant_id
    ORDER BY u.external_id
    """
)


class WhoAmI(BaseModel):
    actor: str  # the named token's name, or "bootstrap" for TOLLGATE_ADMIN_TOKEN
    role: Literal["admin", "viewer"]


class PlanList(BaseModel):
    data: list[PlanOut]


class EndUserOut(BaseModel):
    user: str
    monthly_budget_usd: UsdOut | None  # null: the tenant's default for users applies
    created_at: datetime
    spent_usd: UsdOut  # in the current period ("0" before the first request)
    requests: int
    period_start: datetime | None
    period_end: datetime | None


class EndUserList(BaseModel):
    data: list[EndUserOut]


@router.get("/whoami")
async def get_whoami(admin: Admin) -> WhoAmI:
    """The token's name and role: the console hides what a viewer may not do."""
    return WhoAmI(actor=admin.name, role="viewer" if admin.role == "viewer" else "admin")


@router.get("/plans")
async def get_plans(state: State) -> PlanList:
    async with state.sessions() as session, session.begin():
        plans = await session.scalars(select(Plan).order_by(Plan.monthly_budget_usd, Plan.code))
        return PlanList(data=[PlanOut.of(plan) for plan in plans])


@router.get("/tenants/{tenant_id}/users")
async def get_users(tenant_id: uuid.UUID, state: State) -> EndUserList:
    """404 for an unknown tenant; users appear on first sight (a request or a limit set)."""
    async with state.sessions() as session, session.begin():
        await service.tenant_with_plan(session, tenant_id)
        rows = (await session.execute(_USERS, {"tenant_id": tenant_id})).mappings()
        return EndUserList(
            data=[
                EndUserOut(
                    **{**row, "spent_usd": row["spent_usd"] or 0, "requests": row["requests"] or 0}
                )
                for row in rows
            ]
        )
