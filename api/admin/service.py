"""Admin operations on tenants, end users and plans. Services flush; the endpoint commits."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.admin.schemas import PlanPut, SubscriptionInfo, TenantPatch
from api.db.models import EndUser, Plan, Subscription, Tenant
from api.errors import Conflict, NotFound
from api.inputs import clip
from api.tenants.users import ensure_end_user

# Tenant fields a PATCH copies as given (null clears the override: the plan's applies).
_TENANT_OVERRIDES = (
    "monthly_budget_usd",
    "rpm_limit",
    "max_concurrent",
    "quota_mode",
    "user_default_budget_usd",
)
_PLAN_FIELDS = (
    "name",
    "monthly_budget_usd",
    "rpm_limit",
    "max_concurrent",
    "quota_mode",
    "razorpay_plan_id",
)
NEW_PLAN_RPM = 60
NEW_PLAN_MAX_CONCURRENT = 4


async def tenant_with_plan(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[Tenant, Plan]:
    stmt = select(Tenant, Plan).join(Plan, Plan.code == Tenant.plan_code)
    row = (await session.execute(stmt.where(Tenant.id == tenant_id))).first()
    if row is None:
        raise NotFound(f"tenant {tenant_id} not found")
    tenant, plan = row
    return tenant, plan


async def list_tenants(session: AsyncSession) -> list[tuple[Tenant, Plan]]:
    stmt = (
        select(Tenant, Plan)
        .join(Plan, Plan.code == Tenant.plan_code)
        .order_by(Tenant.created_at, Tenant.id)
    )
    return [(tenant, plan) for tenant, plan in await session.execute(stmt)]


async def update_tenant(
    session: AsyncSession, tenant_id: uuid.UUID, patch: TenantPatch
) -> tuple[Tenant, Plan]:
    tenant, _ = await tenant_with_plan(session, tenant_id)
    given = patch.model_fields_set
    if "plan" in given and patch.plan is not None:
        if await session.get(Plan, patch.plan) is None:
            raise NotFound(f"plan: unknown plan {clip(patch.plan)}")
        tenant.plan_code = patch.plan
    if "status" in given and patch.status is not None:
        tenant.status = patch.status
    for field in _TENANT_OVERRIDES:
        if field in given:
            setattr(tenant, field, getattr(patch, field))
    if session.is_modified(tenant):
        tenant.updated_at = func.now()
    await session.flush()
    await session.refresh(tenant)
    return await tenant_with_plan(session, tenant_id)


async def user_limit(session: AsyncSession, tenant_id: uuid.UUID, user: str) -> EndUser | None:
    """The tenant's end user `user`, if known (for the audit log's "before")."""
    stmt = select(EndUser).where(EndUser.tenant_id == tenant_id, EndUser.external_id == user)
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_user_limit(
    session: AsyncSession, tenant_id: uuid.UUID, user: str, budget: Decimal | None
) -> EndUser:
    """Set (or clear, with None) an end user's monthly budget, creating the user if new."""
    await tenant_with_plan(session, tenant_id)
    user_id = await ensure_end_user(session, tenant_id, user)
    row = await session.get(EndUser, user_id, populate_existing=True)
    assert row is not None  # ensure_end_user just returned it, in this transaction
    row.monthly_budget_usd = budget
    await session.flush()
    return row


async def put_plan(session: AsyncSession, code: str, put: PlanPut) -> tuple[Plan, bool]:
    """Set the given fields of plan `code`, creating it if new. Returns (plan, created)."""
    await _check_razorpay_plan_id(session, code, put)
    plan = await session.get(Plan, code, with_for_update=True)
    created = False
    if plan is None:
        created = await _insert_plan(session, code, put)
        # Not created: another request created it meanwhile; this one is then an update.
        plan = await session.get(Plan, code, with_for_update=True, populate_existing=True)
        assert plan is not None
    if not created:
        given = put.model_fields_set
        for field in _PLAN_FIELDS:
            if field in given:
                setattr(plan, field, getattr(put, field))
        if session.is_modified(plan):
            plan.updated_at = func.now()
        await session.flush()
        await session.refresh(plan)
    return plan, created


async def _insert_plan(session: AsyncSession, code: str, put: PlanPut) -> bool:
    if put.monthly_budget_usd is None:
        raise NotFound(f"plan {clip(code)} not found; monthly_budget_usd is required to create it")
    stmt = (
        insert(Plan)
        .values(
            code=code,
            name=put.name or code,
            monthly_budget_usd=put.monthly_budget_usd,
            rpm_limit=put.rpm_limit or NEW_PLAN_RPM,
            max_concurrent=put.max_concurrent or NEW_PLAN_MAX_CONCURRENT,
            quota_mode=put.quota_mode or "hard",
            razorpay_plan_id=put.razorpay_plan_id,
        )
        .on_conflict_do_nothing(index_elements=[Plan.code])
        .returning(Plan.code)
    )
    return (await session.execute(stmt)).first() is not None


async def _check_razorpay_plan_id(session: AsyncSession, code: str, put: PlanPut) -> None:
    if put.razorpay_plan_id is None:
        return
    stmt = select(Plan.code).where(Plan.razorpay_plan_id == put.razorpay_plan_id, Plan.code != code)
    other = (await session.execute(stmt)).scalar_one_or_none()
    if other is not None:
        raise Conflict(f"razorpay_plan_id: already used by plan {clip(other)}")


async def subscriptions_of(
    session: AsyncSession, tenant_ids: list[uuid.UUID]
) -> dict[uuid.UUID, SubscriptionInfo]:
    """Each tenant's latest Razorpay subscription (billing keeps them in step)."""
    stmt = (
        select(Subscription)
        .where(Subscription.tenant_id.in_(tenant_ids))
        .order_by(Subscription.tenant_id, Subscription.created_at.desc())
        .ext(distinct_on(Subscription.tenant_id))
    )
    return {
        row.tenant_id: SubscriptionInfo(
            id=row.id,
            status=row.status,
            current_start=row.current_start,
            current_end=row.current_end,
            short_url=row.short_url,
        )
        for row in await session.scalars(stmt)
    }
