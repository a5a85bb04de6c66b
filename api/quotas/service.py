"""Turning a reservation decision into an answer: go ahead (with headers that tell the tenant
where it stands), or a 402 / 429 in Anthropic's error shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from api.ledger.functions import Reservation
from api.pricing.cost import format_usd
from api.quotas.errors import BudgetExceeded, RateLimited


def quota_headers(r: Reservation, now: datetime | None = None) -> dict[str, str]:
    """Anthropic-style `anthropic-ratelimit-requests-*` plus Tollgate's budget and
    concurrency headers."""
    now = now or datetime.now(UTC)
    reset = (now.replace(second=0, microsecond=0) + timedelta(minutes=1)).isoformat()
    remaining = r.budget - r.spent - r.reserved
    headers = {
        "anthropic-ratelimit-requests-limit": str(r.rpm),
        "anthropic-ratelimit-requests-remaining": str(max(0, r.rpm - (r.rpm_used or 0))),
        "anthropic-ratelimit-requests-reset": reset.replace("+00:00", "Z"),
        "tollgate-budget-limit-usd": format_usd(r.budget),
        "tollgate-budget-remaining-usd": format_usd(max(remaining, remaining * 0)),
        "tollgate-concurrency-limit": str(r.concurrency),
        "tollgate-concurrency-remaining": str(max(0, r.concurrency - r.in_flight)),
    }
    if r.user_budget is not None and r.user_spent is not None:
        headers["tollgate-user-budget-limit-usd"] = format_usd(r.user_budget)
    return headers


def enforce(r: Reservation) -> dict[str, str]:
    """The headers for an admitted request; raises the matching error for a refused one."""
    headers = quota_headers(r)
    if r.outcome == "ok":
        return headers
    if r.outcome == "budget":
        raise BudgetExceeded(
            f"monthly budget of ${format_usd(r.budget)} reached "
            f"(spent ${format_usd(r.spent)}, reserved ${format_usd(r.reserved)})",
            headers=headers,
        )
    if r.outcome == "user_budget":
        raise BudgetExceeded("this end user's monthly budget is reached", headers=headers)
    if r.outcome == "key_budget" and r.key_budget is not None:
        raise BudgetExceeded(
            f"this API key's monthly budget of ${format_usd(r.key_budget)} is reached "
            f"(spent ${format_usd(r.key_spent or Decimal(0))})",
            headers=headers,
        )
    headers["retry-after"] = str(max(1, r.retry_after))
    if r.outcome == "rate":
        raise RateLimited(f"rate limit of {r.rpm} requests per minute reached", headers=headers)
    raise RateLimited(
        f"at most {r.concurrency} concurrent requests for this tenant", headers=headers
    )
