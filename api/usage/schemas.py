"""`GET /v1/usage` body: money as decimal strings, counters as integers, times ISO 8601 UTC."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from api.money import UsdOut


class UserUsage(BaseModel):
    user: str
    requests: int
    spent_usd: UsdOut
    limit_usd: UsdOut | None  # the user's own limit, else the tenant's default, else none


class TenantUsage(BaseModel):
    tenant_id: uuid.UUID
    plan: str
    period_start: datetime
    period_end: datetime
    limit_usd: UsdOut
    spent_usd: UsdOut
    reserved_usd: UsdOut
    remaining_usd: UsdOut
    users: list[UserUsage]
