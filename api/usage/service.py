"""The caller's usage for the current budget period (its subscription cycle, else the
calendar month in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from api.keys.principal import Principal
from api.quotas.periods import budget_period
from api.usage import repository
from api.usage.schemas import TenantUsage, UserUsage


async def current_usage(
    session: AsyncSession, caller: Principal, now: datetime | None = None
) -> TenantUsage:
    period_start, period_end = budget_period(now or datetime.now(UTC), caller.billing_period)
    # One snapshot for the totals and the per-user rows.
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    totals = await repository.tenant_totals(session, caller, period_start)
    users = await repository.user_rows(session, caller, period_start)
    remaining = totals.limit_usd - totals.spent_usd - totals.reserved_usd
    return TenantUsage(
        tenant_id=caller.tenant_id,
        plan=totals.plan,
        period_start=period_start,
        period_end=period_end,
        limit_usd=totals.limit_usd,
        spent_usd=totals.spent_usd,
        reserved_usd=totals.reserved_usd,
        remaining_usd=max(remaining, Decimal(0)),
        users=[
            UserUsage(
                user=u.user, requests=u.requests, spent_usd=u.spent_usd, limit_usd=u.limit_usd
            )
            for u in users
        ],
    )
