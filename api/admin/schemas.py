"""Request and response bodies of the admin API.

Money goes out as a decimal string and comes in as a decimal string or a JSON number (never a
float's binary value: numbers are read through `str`). Counters are integers. In a PATCH or PUT
body a field that is absent is left alone; `null` clears an override where that is allowed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError

from api.db.models import Plan, Tenant
from api.inputs import CleanText, UserId, whole_number
from api.money import UsdIn, UsdOut

_MAX_INT32 = 2**31 - 1
T = TypeVar("T")


def json_integer(value: object) -> object:
    """A JSON integer written with a fraction of zero (1024.0) is an integer."""
    number = whole_number(value)
    return value if number is None else number


PositiveInt = Annotated[int, Field(strict=True, gt=0, le=_MAX_INT32), BeforeValidator(json_integer)]
QuotaMode = Literal["hard", "soft"]
TenantStatus = Literal["active", "suspended"]
PlanCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Label = CleanText


def _document_not_null(schema: dict[str, Any], cls: type) -> None:
    """In the JSON Schema, the fields that may be left out but not set to null lose their
    `null` branch (and their `null` default)."""
    for name in getattr(cls, "NOT_NULL", ()):
        prop = schema["properties"][name]
        prop.pop("default", None)
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            prop.update(branches[0])
        elif branches:
            prop["anyOf"] = branches


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_not_null)
    NOT_NULL: ClassVar[tuple[str, ...]] = ()


def _not_null(value: object) -> object:
    """For fields that may be left out but not set to null."""
    if value is None:
        raise PydanticCustomError("not_null", "must not be null")
    return value


# --- tenants -------------------------------------------------------------------------------


class TenantCreate(_Input):
    name: Label
    plan: PlanCode = "free"


class TenantCreated(BaseModel):
    id: uuid.UUID
    name: str
    plan: str


class TenantPatch(_Input):
    plan: PlanCode | None = None  # None only when absent: an explicit null is refused
    status: TenantStatus | None = None
    monthly_budget_usd: UsdIn | None = None
    rpm_limit: PositiveInt | None = None
    max_concurrent: PositiveInt | None = None
    quota_mode: QuotaMode | None = None
    user_default_budget_usd: UsdIn | None = None

    NOT_NULL = ("plan", "status")
    _required_if_given = field_validator(*NOT_NULL, mode="before")(_not_null)


class Limits(BaseModel):
    """The limits in force: the tenant's override where set, else its plan's."""

    monthly_budget_usd: UsdOut
    rpm_limit: int
    max_concurrent: int
    quota_mode: QuotaMode
    user_default_budget_usd: UsdOut | None


class Overrides(BaseModel):
    """The tenant's own values (null: the plan's applies)."""

    monthly_budget_usd: UsdOut | None
    rpm_limit: int | None
    max_concurrent: int | None
    quota_mode: QuotaMode | None


class SubscriptionInfo(BaseModel):
    id: str
    status: str
    current_start: datetime | None
    current_end: datetime | None
    short_url: str | None = None  # where the customer authorizes it (Razorpay's page)


class TenantOut(BaseModel):
    id: uuid.UUID
    name: str
    plan: str
    status: TenantStatus
    limits: Limits
    overrides: Overrides
    subscription: SubscriptionInfo | None = None

    @classmethod
    def of(
        cls, tenant: Tenant, plan: Plan, subscription: SubscriptionInfo | None = None
    ) -> TenantOut:
        return cls(
            subscription=subscription,
            id=tenant.id,
            name=tenant.name,
            plan=tenant.plan_code,
            status=_status(tenant.status),
            limits=Limits(
                monthly_budget_usd=_pick(tenant.monthly_budget_usd, plan.monthly_budget_usd),
                rpm_limit=_pick(tenant.rpm_limit, plan.rpm_limit),
                max_concurrent=_pick(tenant.max_concurrent, plan.max_concurrent),
                quota_mode=_mode(_pick(tenant.quota_mode, plan.quota_mode)),
                user_default_budget_usd=tenant.user_default_budget_usd,
            ),
            overrides=Overrides(
                monthly_budget_usd=tenant.monthly_budget_usd,
                rpm_limit=tenant.rpm_limit,
                max_concurrent=tenant.max_concurrent,
                quota_mode=_mode(tenant.quota_mode) if tenant.quota_mode else None,
            ),
        )


def _pick(override: T | None, default: T) -> T:
    return default if override is None else override


def _mode(value: str) -> QuotaMode:
    return "soft" if value == "soft" else "hard"


def _status(value: str) -> TenantStatus:
    return "suspended" if value == "suspended" else "active"


# --- keys and end users --------------------------------------------------------------------


# Visible ASCII: model ids and fnmatch patterns (`claude-haiku-*`), read the same by every
# regex engine (a Unicode `\S` is not: Python and pydantic's Rust engine disagree on some).
ModelPattern = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[!-~]+$")]


def _iso_text(value: object) -> object:
    """A time in a body is an ISO 8601 string with an offset, never a bare number."""
    if not isinstance(value, str | datetime):
        raise PydanticCustomError("iso_time", "must be an ISO 8601 time with an offset")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
ModelList = Annotated[list[ModelPattern], Field(max_length=100)]


class KeyPolicies(_Input):
    """A key's own limits; in a PATCH, absent leaves one alone and null removes it.
    `allowed_models`: ids or patterns (`claude-haiku-*`), on top of the plan's list."""

    expires_at: Timestamp | None = None
    allowed_models: ModelList | None = None
    monthly_budget_usd: UsdIn | None = None


class KeyCreate(KeyPolicies):
    name: Label | None = None
    user: UserId | None = None


class KeyPatch(KeyPolicies):
    pass


class KeyRotate(_Input):
    revoke_at: Timestamp | None = None  # when the old key stops; default: in 24 hours


class KeyCreated(BaseModel):
    id: uuid.UUID
    key: str
    prefix: str


class KeyRotated(KeyCreated):
    """The new key (shown once) and when the old one stops working."""

    old_key_id: uuid.UUID
    revoke_at: datetime


class KeyOut(BaseModel):
    """One key of `GET /admin/tenants/{id}/keys`: never the key itself. `revoked_at` in the
    future is a scheduled revocation (rotation): the key works until then."""

    id: uuid.UUID
    prefix: str
    name: str | None
    user: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    allowed_models: list[str] | None
    monthly_budget_usd: UsdOut | None


class KeyList(BaseModel):
    data: list[KeyOut]


class UserLimitIn(_Input):
    monthly_budget_usd: UsdIn | None  # required; null clears (the tenant's default applies)


class UserLimitOut(BaseModel):
    tenant_id: uuid.UUID
    user: str
    monthly_budget_usd: UsdOut | None


# --- plans ---------------------------------------------------------------------------------


class PlanPut(_Input):
    name: Label | None = None
    monthly_budget_usd: UsdIn | None = None
    rpm_limit: PositiveInt | None = None
    max_concurrent: PositiveInt | None = None
    razorpay_plan_id: Label | None = None  # null clears
    quota_mode: QuotaMode | None = None

    NOT_NULL = ("name", "monthly_budget_usd", "rpm_limit", "max_concurrent", "quota_mode")
    _required_if_given = field_validator(*NOT_NULL, mode="before")(_not_null)


class PlanOut(BaseModel):
    code: str
    name: str
    monthly_budget_usd: UsdOut
    rpm_limit: int
    max_concurrent: int
    quota_mode: QuotaMode
    razorpay_plan_id: str | None
    allowed_models: list[str] | None

    @classmethod
    def of(cls, plan: Plan) -> PlanOut:
        return cls(
            code=plan.code,
            name=plan.name,
            monthly_budget_usd=plan.monthly_budget_usd,
            rpm_limit=plan.rpm_limit,
            max_concurrent=plan.max_concurrent,
            quota_mode=_mode(plan.quota_mode),
            razorpay_plan_id=plan.razorpay_plan_id,
            allowed_models=plan.allowed_models,
        )
