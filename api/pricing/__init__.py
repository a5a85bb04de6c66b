"""Model prices: a versioned price book in Postgres (api/pricing/prices.json seeds it), kept
current in every process, and exact request costing from it."""

from api.pricing.book import PriceBook, shipped_book
from api.pricing.cost import Usage, compute_cost, format_usd, worst_case_cost
from api.pricing.model import ModelPrice, PriceError, Rates, Tier, parse_price

__all__ = [
    "ModelPrice",
    "PriceBook",
    "PriceError",
    "Rates",
    "Tier",
    "Usage",
    "compute_cost",
    "format_usd",
    "parse_price",
    "shipped_book",
    "worst_case_cost",
]
