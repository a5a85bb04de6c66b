"""Model prices (versioned data in ``prices.json``) and exact request costing."""

from api.pricing.cost import Usage, compute_cost, format_usd, rates_for, worst_case_cost
from api.pricing.table import ModelPrice, PriceTable, Rates, load_price_table

__all__ = [
    "ModelPrice",
    "PriceTable",
    "Rates",
    "Usage",
    "compute_cost",
    "format_usd",
    "load_price_table",
    "rates_for",
    "worst_case_cost",
]
