"""`POST /admin/tenants/{id}/subscription {plan}`: create the Razorpay customer and subscription
(notes carry our tenant id) and return where the customer authorizes it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from api.auth.admin import admin_body, require_admin
from api.db.models import Plan
from api.errors import BadGateway, InvalidRequest, ServiceUnavailable
from api.http.jsonbody import body_schema
from api.inputs import clip
from api.state import State
from api.tenants.service import get_tenant
from billing.gateway import RazorpayRefused, RazorpayUnavailable
from billing.models import Subscription
from billing.subscriptions import FINAL

router = APIRouter(tags=["billing"], dependencies=[Depends(require_admin)])


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SubscriptionOut(BaseModel):
    subscription_id: str
    short_url: str | None


def _created_at(entity: dict[str, Any]) -> datetime:
    created = entity.get("created_at")
    if isinstance(created, int) and not isinstance(created, bool):
        return datetime.fromtimestamp(created, UTC)
    return datetime.now(UTC)


@router.post(
    "/admin/tenants/{tenant_id}/subscription",
    status_code=201,
    openapi_extra=body_schema(SubscriptionIn),
)
async def create_subscription(
    tenant_id: uuid.UUID,
    body: Annotated[SubscriptionIn, admin_body(SubscriptionIn)],
    state: State,
) -> SubscriptionOut:
    billing = state.billing
    if billing is None:
        raise ServiceUnavailable("billing is not configured (set the RAZORPAY_* variables)")
    async with state.sessions() as session:
        tenant = await get_tenant(session, tenant_id)
        plan = await session.get(Plan, body.plan)
        if plan is None or plan.razorpay_plan_id is None:
            raise InvalidRequest(f"plan: {clip(body.plan)} is unknown or has no razorpay_plan_id")
        live = await session.scalar(
            select(Subscription.id).where(
                Subscription.tenant_id == tenant_id, Subscription.status.not_in(FINAL)
            )
        )
        if live is not None:
            raise InvalidRequest(f"tenant already has subscription {live}; cancel it first")
    notes = {"tenant_id": str(tenant_id)}
    try:
        customer = await billing.gateway.create_customer(tenant.name, notes)
        remote = await billing.gateway.create_subscription(
            {
                "plan_id": plan.razorpay_plan_id,
                "customer_id": customer["id"],
                "total_count": billing.settings.total_count,
                "customer_notify": 1,
                "notes": notes,
            }
        )
    except (RazorpayUnavailable, RazorpayRefused, KeyError) as exc:
        raise BadGateway(f"Razorpay: {exc}") from None
    async with state.sessions() as session, session.begin():
        # A webhook for it may already have created the row (it carries our tenant id).
        await session.execute(
            insert(Subscription)
            .values(
                id=remote["id"],
                tenant_id=tenant_id,
                plan_code=plan.code,
                status=str(remote.get("status", "created")),
                customer_id=customer["id"],
                short_url=remote.get("short_url"),
                version_at=_created_at(remote),  # Razorpay's clock, like its events
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
    return SubscriptionOut(subscription_id=remote["id"], short_url=remote.get("short_url"))
