"""Exact request pricing.

Arithmetic rules (the ledger depends on them, so they are fixed here):

* Everything is :class:`~decimal.Decimal` in a local context of 40 significant digits, which
  holds every intermediate exactly for any realistic token count (rates have at most a few
  decimal places; a product of a 12-digit count and a rate stays far below 40 digits).
* Nothing is rounded until the end; the total is then quantized to 10 decimal places
  (1e-10 USD) with ``ROUND_HALF_UP``. :func:`worst_case_cost` rounds up (``ROUND_CEILING``)
  instead, so a reservation is never below the cost it covers.
* Long-context rates apply to the WHOLE request when its total input tokens (input + cache
  writes + cache reads) are strictly above the model's threshold (exactly 200,000 is not).
* The data-residency multiplier scales the token cost (all token classes, not web search) when
  the usage reports ``inference_geo == "us"``; any other value, or none, is priced at 1x.
* Web search is ``web_search_per_1000`` USD per 1,000 requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Context, Decimal, localcontext

from api.pricing.table import ModelPrice, Rates

__all__ = [
    "COST_QUANTUM",
    "Usage",
    "compute_cost",
    "format_usd",
    "rates_for",
    "worst_case_cost",
]

COST_QUANTUM = Decimal("1E-10")
"""Costs are stored and compared at 10 decimal places of a dollar."""

_CONTEXT = Context(prec=40, rounding=ROUND_HALF_UP)
_MILLION = Decimal(1_000_000)
_THOUSAND = Decimal(1_000)
_RESIDENCY_GEO = "us"


@dataclass(slots=True)
class Usage:
    """Token and server-tool counters for one request, as the upstream reports them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    web_search_requests: int = 0
    inference_geo: str | None = None

    @property
    def cache_creation_input_tokens(self) -> int:
        """All cache-write tokens (5 minute + 1 hour), as the API's usage field names it."""
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def total_input_tokens(self) -> int:
        """Input + cache writes + cache reads: the count the long-context threshold uses."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_tokens


def rates_for(price: ModelPrice, total_input_tokens: int) -> Rates:
    """The rates that apply to a whole request with this many total input tokens."""
    threshold = price.long_context_threshold
    if price.long_context is not None and threshold is not None and total_input_tokens > threshold:
        return price.long_context
    return price.base


def compute_cost(price: ModelPrice, usage: Usage) -> Decimal:
    """The exact USD cost of ``usage`` at ``price``, quantized to 1e-10 (ROUND_HALF_UP)."""
    counts = (
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_write_5m_tokens,
        usage.cache_write_1h_tokens,
        usage.cache_read_tokens,
        usage.web_search_requests,
    )
    if any(n < 0 for n in counts):
        raise ValueError(f"usage counters must not be negative: {usage!r}")
    rates = rates_for(price, usage.total_input_tokens)
    with localcontext(_CONTEXT):
        token_micro_usd = (
            usage.input_tokens * rates.input
            + usage.output_tokens * rates.output
            + usage.cache_write_5m_tokens * rates.cache_write_5m
            + usage.cache_write_1h_tokens * rates.cache_write_1h
            + usage.cache_read_tokens * rates.cache_read
        )
        tokens = token_micro_usd / _MILLION
        multiplier = price.data_residency_multiplier
        if multiplier is not None and usage.inference_geo == _RESIDENCY_GEO:
            tokens *= multiplier
        web = usage.web_search_requests * price.web_search_per_1000 / _THOUSAND
        return (tokens + web).quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def worst_case_cost(
    price: ModelPrice,
    input_upper_bound: int,
    max_tokens: int,
    *,
    cache_writes: bool = False,
    web_search_requests: int = 0,
) -> Decimal:
    """An upper bound on the cost of a request, for the pre-flight reservation.

    ``input_upper_bound`` bounds the request's TOTAL input tokens (input + cache writes + cache
    reads). It is priced at the highest input rate that can apply: base, or also long-context
    when the bound is above the threshold; ``max_tokens`` at the highest matching output rate.
    The data-residency multiplier is always included when it is above 1 (the geo is only known
    after the response). Rounded up to 1e-10.

    Never below :func:`compute_cost` of a usage with total input <= the bound, output <=
    ``max_tokens``, no cache writes and no web search. Pass ``cache_writes=True`` when the
    request may write the prompt cache (cache writes cost up to 2x input), and
    ``web_search_requests`` = the web search tool's ``max_uses`` when it is enabled.
    """
    if input_upper_bound < 0 or max_tokens < 0 or web_search_requests < 0:
        raise ValueError("worst_case_cost: bounds must not be negative")
    tiers = [price.base]
    threshold = price.long_context_threshold
    if price.long_context is not None and threshold is not None and input_upper_bound > threshold:
        tiers.append(price.long_context)
    if cache_writes:
        in_rate = max(max(r.input, r.cache_write_5m, r.cache_write_1h) for r in tiers)
    else:
        in_rate = max(r.input for r in tiers)
    out_rate = max(r.output for r in tiers)
    with localcontext(_CONTEXT):
        tokens = (input_upper_bound * in_rate + max_tokens * out_rate) / _MILLION
        multiplier = price.data_residency_multiplier
        if multiplier is not None and multiplier > 1:
            tokens *= multiplier
        web = web_search_requests * price.web_search_per_1000 / _THOUSAND
        return (tokens + web).quantize(COST_QUANTUM, rounding=ROUND_CEILING)


def format_usd(d: Decimal) -> str:
    """A plain decimal string for JSON: no exponent, no trailing zeros ("0.004215", "0")."""
    if not d.is_finite():
        raise ValueError(f"format_usd: not a finite amount: {d!r}")
    text = f"{d:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
