"""The batch discount: a batch request costs half of the same request's standard price (every
other modifier — long context, cache writes and reads, web search, data residency — applies as
for a standard request, then the discount). The one place to re-point when the price book
carries the discount as a modifier."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from api.pricing.cost import COST_QUANTUM, Usage, compute_cost
from api.pricing.table import ModelPrice

BATCH_SHARE = Decimal("0.5")


def batch_cost(price: ModelPrice, usage: Usage) -> Decimal:
    return (compute_cost(price, usage) * BATCH_SHARE).quantize(COST_QUANTUM, ROUND_HALF_UP)


def batch_reservation(standard: Decimal) -> Decimal:
    """A standard worst case (or estimate) at the batch discount, never rounded down."""
    return (standard * BATCH_SHARE).quantize(COST_QUANTUM, ROUND_CEILING)
