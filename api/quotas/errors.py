"""Quota rejections, in Anthropic's error shape."""

from __future__ import annotations

from api.errors import TollgateError


class BudgetExceeded(TollgateError):
    status, error_type = 402, "billing_error"


class RateLimited(TollgateError):
    status, error_type = 429, "rate_limit_error"
