"""`POST /admin/tenants/{id}/subscription {plan}` → `{subscription_id, short_url}`: where the
customer authorizes the subscription (see `billing.service.create_subscription`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, StringConstraints

from api.auth.admin import Admin, admin_body, require_admin
from api.http.jsonbody import body_schema
from api.state import State
from billing import service
from billing.deps import Billing

router = APIRouter(tags=["billing"], dependencies=[Depends(require_admin)])


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SubscriptionOut(BaseModel):
    subscription_id: str
    short_url: str | None


@router.post(
    "/admin/tenants/{tenant_id}/subscription",
    status_code=201,
    openapi_extra=body_schema(SubscriptionIn),
)
async def create_subscription(
    tenant_id: uuid.UUID,
    body: Annotated[SubscriptionIn, admin_body(SubscriptionIn)],
    billing: Billing,
    state: State,
    admin: Admin,
) -> SubscriptionOut:
    created = await service.create_subscription(
        state.sessions, billing.gateway, billing.settings, tenant_id, body.plan, admin
    )
    return SubscriptionOut(subscription_id=created.id, short_url=created.short_url)
