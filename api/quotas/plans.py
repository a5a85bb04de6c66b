"""What a plan (or a key) allows: which models it may call."""

from __future__ import annotations

from fnmatch import fnmatchcase

from api.errors import PermissionDenied
from api.inputs import clip
from api.keys.principal import Principal


def model_allowed(patterns: tuple[str, ...] | None, *ids: str) -> bool:
    """Plan and key model lists: exact ids or fnmatch patterns (`claude-haiku-*`); None = all."""
    if patterns is None:
        return True
    return any(fnmatchcase(i, pattern) for i in ids for pattern in patterns)


def allows(principal: Principal, *ids: str) -> bool:
    """The caller's plan and its key both allow one of `ids` (a model's names)."""
    return model_allowed(principal.allowed_models, *ids) and model_allowed(
        principal.key_models, *ids
    )


def check_model_allowed(principal: Principal, model: str, *ids: str) -> None:
    """403 `permission_error` unless the plan and the key allow `model` (by any of `ids`, its
    names; default: `model` itself)."""
    names = ids or (model,)
    if not model_allowed(principal.allowed_models, *names):
        raise PermissionDenied(
            f"model: {clip(model)} is not available on the {principal.plan_code} plan"
        )
    if not model_allowed(principal.key_models, *names):
        raise PermissionDenied(f"model: {clip(model)} is not allowed for this API key")
