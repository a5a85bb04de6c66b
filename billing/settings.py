"""Billing settings. Billing is off until every RAZORPAY_* secret is set; setting only some of
them is a start-up error, so a half-configured deployment never silently skips billing."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.settings import SettingsError

_REQUIRED = ("RAZORPAY_KEY_ID", "RAZORPAY_KEY_SECRET", "RAZORPAY_WEBHOOK_SECRET")


class BillingSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    key_id: Annotated[str | None, Field(validation_alias=AliasChoices("RAZORPAY_KEY_ID"))] = None
    key_secret: Annotated[
        SecretStr | None, Field(validation_alias=AliasChoices("RAZORPAY_KEY_SECRET"))
    ] = None
    webhook_secret: Annotated[
        SecretStr | None, Field(validation_alias=AliasChoices("RAZORPAY_WEBHOOK_SECRET"))
    ] = None
    base_url: Annotated[str, Field(validation_alias=AliasChoices("RAZORPAY_BASE_URL"))] = (
        "https://api.razorpay.com"
    )

    # What a lapsed subscription (halted, cancelled, completed, expired, paused) does to its
    # tenant: move it to the `free` plan, or suspend it.
    lapsed: Annotated[
        Literal["free", "block"], Field(validation_alias=AliasChoices("TOLLGATE_BILLING_LAPSED"))
    ] = "free"
    # How long a `pending` subscription (a renewal charge failing) keeps its plan.
    grace_hours: Annotated[
        Decimal, Field(validation_alias=AliasChoices("TOLLGATE_BILLING_GRACE_HOURS"), ge=0)
    ] = Decimal(72)
    # USD -> INR for overage add-ons; overage billing is off until it is set.
    usd_inr_rate: Annotated[
        Decimal | None, Field(validation_alias=AliasChoices("TOLLGATE_USD_INR_RATE"), gt=0)
    ] = None
    sync_interval_s: Annotated[
        Decimal, Field(validation_alias=AliasChoices("TOLLGATE_BILLING_SYNC_S"), gt=0)
    ] = Decimal(300)
    # Every Razorpay call gets this timeout (the SDK has none by default).
    timeout_s: Annotated[
        Decimal, Field(validation_alias=AliasChoices("RAZORPAY_TIMEOUT_S"), gt=0, le=60)
    ] = Decimal(10)
    total_count: Annotated[
        int, Field(validation_alias=AliasChoices("TOLLGATE_SUBSCRIPTION_CYCLES"), ge=1)
    ] = 120

    @field_validator("key_id", "key_secret", "webhook_secret", "usd_inr_rate", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if value.rstrip("/").endswith("/v1"):
            raise ValueError("must not end with /v1 (the SDK adds it)")
        return value.rstrip("/")

    @property
    def enabled(self) -> bool:
        return None not in (self.key_id, self.key_secret, self.webhook_secret)


BILLING_OFF = (
    "billing is not configured: set RAZORPAY_KEY_ID, RAZORPAY_KEY_SECRET and "
    "RAZORPAY_WEBHOOK_SECRET"
)


def load_billing_settings() -> BillingSettings:
    try:
        settings = BillingSettings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "RAZORPAY_*"
        raise SettingsError(f"invalid configuration: {name} {first['msg']}") from None
    given = [settings.key_id, settings.key_secret, settings.webhook_secret]
    if any(v is not None for v in given) and not settings.enabled:
        missing = [name for name, v in zip(_REQUIRED, given, strict=True) if v is None]
        raise SettingsError(
            f"invalid configuration: billing is half-configured; also set {', '.join(missing)}"
        )
    return settings
