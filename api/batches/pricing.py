"""The batch discount, from the price book: a batch request costs its standard price (every
modifier — tiers, cache writes and reads, web search, fast mode, data residency — included) times
the model's `batch_discount` (0.5 unless the book says otherwise)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from api.pricing.cost import COST_QUANTUM, Usage, compute_cost
from api.pricing.model import ModelPrice


def batch_cost(price: ModelPrice, usage: Usage) -> Decimal:
    return compute_cost(price, usage, batch=True)


def batch_reservation(price: ModelPrice, standard: Decimal) -> Decimal:
    """A standard worst case (or estimate) at the batch discount, never rounded down."""
    return (standard * price.batch_discount).quantize(COST_QUANTUM, ROUND_CEILING)
