"""A tenant's budget alerts: `PUT /admin/tenants/{id}/alerts {url, thresholds?}` → `{url,
thresholds, secret}` (the signing secret is generated the first time and shown with every PUT;
the audit log records the URL and thresholds, never the secret), `GET` the same without the
secret (`url` null while unset), and `GET …/alerts/deliveries`: each alert fired and how its
delivery went."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from pydantic import BaseModel, BeforeValidator, Field, field_validator

from api.admin.schemas import _Input, json_integer
from api.alerts.service import DEFAULT_THRESHOLDS, deliveries, get_alerts, put_alerts
from api.audit import record
from api.auth.admin import Admin, admin_body, require_admin
from api.http.jsonbody import body_schema
from api.money import UsdOut
from api.state import State
from api.tenants.service import get_tenant

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
Percent = Annotated[int, Field(strict=True, ge=1, le=1000), BeforeValidator(json_integer)]
# An http(s) URL in visible ASCII: a host name or address, an optional port, a path.
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?$"


class AlertsIn(_Input):
    url: Annotated[str, Field(max_length=2048, pattern=URL_PATTERN)]
    thresholds: Annotated[list[Percent], Field(min_length=1, max_length=10)] = list(
        DEFAULT_THRESHOLDS
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        return value

    @field_validator("thresholds")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        return sorted(set(value))


class AlertsOut(BaseModel):
    url: str | None  # null: no alerts set (thresholds are then the defaults)
    thresholds: list[int]


class AlertsSet(AlertsOut):
    url: str
    secret: str  # signs every delivery (Tollgate-Signature)


class Delivery(BaseModel):
    id: uuid.UUID
    user: str | None
    threshold_pct: int
    period_start: datetime
    period_end: datetime
    limit_usd: UsdOut
    spent_usd: UsdOut
    created_at: datetime
    attempts: int
    last_status: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    next_attempt_at: datetime | None


class DeliveryList(BaseModel):
    data: list[Delivery]


@router.put("/tenants/{tenant_id}/alerts", openapi_extra=body_schema(AlertsIn))
async def put_tenant_alerts(
    tenant_id: uuid.UUID,
    body: Annotated[AlertsIn, admin_body(AlertsIn)],
    state: State,
    admin: Admin,
) -> AlertsSet:
    async with state.sessions() as session, session.begin():
        old = await get_alerts(session, tenant_id)
        before = None if old is None else {"url": old.url, "thresholds": old.thresholds}
        alerts = await put_alerts(session, tenant_id, body.url, body.thresholds)
        after = {"url": alerts.url, "thresholds": alerts.thresholds}
        await record(session, admin, "alerts.set", "tenant", tenant_id, before, after)
    return AlertsSet(url=alerts.url, thresholds=alerts.thresholds, secret=alerts.secret)


@router.get("/tenants/{tenant_id}/alerts")
async def get_tenant_alerts(tenant_id: uuid.UUID, state: State) -> AlertsOut:
    """`{url: null, thresholds: [50, 80, 100]}` while none are set; 404 for an unknown tenant."""
    async with state.sessions() as session, session.begin():
        await get_tenant(session, tenant_id)
        alerts = await get_alerts(session, tenant_id)
    if alerts is None:
        return AlertsOut(url=None, thresholds=list(DEFAULT_THRESHOLDS))
    return AlertsOut(url=alerts.url, thresholds=alerts.thresholds)


@router.get("/tenants/{tenant_id}/alerts/deliveries")
async def get_deliveries(tenant_id: uuid.UUID, state: State) -> DeliveryList:
    async with state.sessions() as session, session.begin():
        rows = await deliveries(session, tenant_id)
    return DeliveryList(data=[Delivery(**row) for row in rows])
