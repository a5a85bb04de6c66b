"""What a tenant's plan allows: which models it may call."""

from __future__ import annotations

from api.errors import PermissionDenied
from api.keys.principal import Principal


def check_model_allowed(principal: Principal, model: str) -> None:
    """403 when the tenant's plan names the models it may use and this is not one of them."""
    if principal.allowed_models is not None and model not in principal.allowed_models:
        raise PermissionDenied(f"model: {model} is not available on the {principal.plan_code} plan")
