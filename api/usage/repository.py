"""Reading the spend counters and the usage reports. Every query here is scoped to the
authenticated caller's tenant, which is the only way in: the functions take the `Principal`,
never a tenant id."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.errors import NotFound, PermissionDenied
from api.keys.principal import Principal
from api.reports import repository as reports
from api.reports.query import ReportQuery

_TOTALS = text(
    """
    SELECT t.plan_code,
           COALESCE(t.monthly_budget_usd, p.monthly_budget_usd) AS limit_usd,
           COALESCE(c.spent_usd, 0) AS spent_usd,
           COALESCE(c.reserved_usd, 0) AS reserved_usd
    FROM tenants t
    JOIN plans p ON p.code = t.plan_code
    LEFT JOIN spend_counters c
           ON c.tenant_id = t.id AND c.end_user_id IS NULL AND c.period_start = :period_start
    WHERE t.id = :tenant_id
    """
)

_USERS = text(
    """
    SELECT u.external_id AS user, c.requests, c.spent_usd,
           COALESCE(u.monthly_budget_usd, t.user_default_budget_usd) AS limit_usd
    FROM spend_counters c
    JOIN end_users u ON u.id = c.end_user_id AND u.tenant_id = c.tenant_id
    JOIN tenants t ON t.id = c.tenant_id
    WHERE c.tenant_id = :tenant_id AND c.period_start = :period_start
      AND c.end_user_id IS NOT NULL
      AND (CAST(:only_user AS uuid) IS NULL OR c.end_user_id = CAST(:only_user AS uuid))
    ORDER BY u.external_id
    """
)


@dataclass(frozen=True)
class Totals:
    plan: str
    limit_usd: Decimal
    spent_usd: Decimal
    reserved_usd: Decimal


@dataclass(frozen=True)
class UserRow:
    user: str
    requests: int
    spent_usd: Decimal
    limit_usd: Decimal | None


async def tenant_totals(session: AsyncSession, caller: Principal, period_start: datetime) -> Totals:
    params = {"tenant_id": caller.tenant_id, "period_start": period_start}
    row = (await session.execute(_TOTALS, params)).mappings().first()
    if row is None:  # deleted after the key was cached
        raise NotFound("tenant not found")
    return Totals(row["plan_code"], row["limit_usd"], row["spent_usd"], row["reserved_usd"])


async def user_rows(
    session: AsyncSession, caller: Principal, period_start: datetime
) -> list[UserRow]:
    params = {
        "tenant_id": caller.tenant_id,
        "period_start": period_start,
        "only_user": caller.bound_user_id,  # a bound key sees its own user only
    }
    result = await session.execute(_USERS, params)
    return [
        UserRow(r["user"], r["requests"], r["spent_usd"], r["limit_usd"]) for r in result.mappings()
    ]


async def usage_report(conn: AsyncConnection, caller: Principal, query: ReportQuery) -> str:
    """The report `query` asks for (JSON text), over the caller's tenant only."""
    return await reports.usage_report(conn, _scoped(caller, query))


def usage_csv(url: URL, caller: Principal, query: ReportQuery) -> AsyncGenerator[bytes, None]:
    """The report as streamed CSV, over the caller's tenant only."""
    return reports.usage_csv(url, _scoped(caller, query))


def _scoped(caller: Principal, query: ReportQuery) -> ReportQuery:
    """`query` confined to the caller's tenant, and to its end user for a bound key."""
    scoped = query.for_tenant(caller.tenant_id)
    if caller.bound_user_id is None:
        return scoped
    if query.filters.user is not None and query.filters.user != caller.bound_user:
        raise PermissionDenied("user: this key is bound to another end user")
    return replace(scoped, filters=replace(scoped.filters, user=caller.bound_user))
