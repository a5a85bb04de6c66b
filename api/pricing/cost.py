"""Exact request pricing, and the worst case the hard-mode reservation holds — both from the
same per-model data (:class:`~api.pricing.model.ModelPrice`).

Arithmetic rules (the ledger depends on them, so they are fixed here):

* Everything is :class:`~decimal.Decimal` in a local context of 40 significant digits, which
  holds every intermediate exactly for any realistic token count.
* Nothing is rounded until the end; the total is then quantized to 10 decimal places
  (1e-10 USD) with ``ROUND_HALF_UP``. :func:`worst_case_cost` rounds up (``ROUND_CEILING``)
  instead, so a reservation is never below the cost it covers.
* Prompt-length tiers apply to the WHOLE request (output included) when its prompt tokens
  (input + cache writes + cache reads) are strictly above the tier's threshold.
* Token cost x fast multiplier (``usage.speed == "fast"``) x the geo multiplier of
  ``usage.inference_geo`` x the batch discount (batch requests only): the modifiers stack.
* Web search is ``web_search_per_1000`` USD per 1,000 requests, added after the multipliers.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Context, Decimal, localcontext

from api.money import COST_QUANTUM, format_usd
from api.pricing.model import ModelPrice, Rates

__all__ = [
    "COST_QUANTUM",
    "Usage",
    "compute_cost",
    "format_usd",
    "worst_case_cost",
]


_CONTEXT = Context(prec=40, rounding=ROUND_HALF_UP)
_MILLION = Decimal(1_000_000)
_THOUSAND = Decimal(1_000)
_ONE = Decimal(1)
FAST = "fast"


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
    speed: str | None = None

    @property
    def cache_creation_input_tokens(self) -> int:
        """All cache-write tokens (5 minute + 1 hour), as the API's usage field names it."""
        return self.cache_write_5m_tokens + self.cache_write_1h_tokens

    @property
    def total_input_tokens(self) -> int:
        """Input + cache writes + cache reads: the count the prompt-length tiers use."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_tokens


def multiplier(
    price: ModelPrice, *, speed: str | None, inference_geo: str | None, batch: bool
) -> Decimal:
    """The product of the modifiers that apply (fast, data residency, batch)."""
    factor = _ONE
    if speed == FAST and price.fast_multiplier is not None:
        factor *= price.fast_multiplier
    if inference_geo is not None:
        factor *= price.geo_multipliers.get(inference_geo, _ONE)
    if batch:
        factor *= price.batch_discount
    return factor


def compute_cost(price: ModelPrice, usage: Usage, *, batch: bool = False) -> Decimal:
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
    rates = price.rates_for(usage.total_input_tokens)
    with localcontext(_CONTEXT):
        token_micro_usd = (
            usage.input_tokens * rates.input
            + usage.output_tokens * rates.output
            + usage.cache_write_5m_tokens * rates.cache_write_5m
            + usage.cache_write_1h_tokens * rates.cache_write_1h
            + usage.cache_read_tokens * rates.cache_read
        )
        factor = multiplier(
            price, speed=usage.speed, inference_geo=usage.inference_geo, batch=batch
        )
        tokens = token_micro_usd / _MILLION * factor
        web = usage.web_search_requests * price.web_search_per_1000 / _THOUSAND
        return (tokens + web).quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def worst_case_cost(
    price: ModelPrice,
    input_upper_bound: int,
    max_tokens: int,
    *,
    cache_writes: bool = False,
    web_search_requests: int = 0,
    fast: bool = False,
) -> Decimal:
    """An upper bound on the cost of a request, for the pre-flight reservation.

    ``input_upper_bound`` bounds the request's prompt tokens (input + cache writes + cache
    reads). It is priced at the highest input rate of every rate set that can apply (base, and
    each tier whose threshold the bound crosses); ``max_tokens`` at the highest output rate of
    those. The largest geo multiplier above 1 is always included (the geo is only known after
    the response); the fast multiplier when the request asks for ``speed: "fast"``. Rounded up.

    Pass ``cache_writes=True`` when the request may write the prompt cache (a 1 h write costs
    more than input), and ``web_search_requests`` = the web search tool's ``max_uses``.
    """
    if input_upper_bound < 0 or max_tokens < 0 or web_search_requests < 0:
        raise ValueError("worst_case_cost: bounds must not be negative")
    sets: list[Rates] = [price.base]
    sets += [t.rates for t in price.tiers if input_upper_bound > t.above_input_tokens]
    if cache_writes:
        in_rate = max(max(r.input, r.cache_write_5m, r.cache_write_1h, r.cache_read) for r in sets)
    else:
        in_rate = max(max(r.input, r.cache_read) for r in sets)
    out_rate = max(r.output for r in sets)
    factor = max([_ONE, *price.geo_multipliers.values()])
    if fast and price.fast_multiplier is not None:
        factor *= max(_ONE, price.fast_multiplier)
    with localcontext(_CONTEXT):
        tokens = (input_upper_bound * in_rate + max_tokens * out_rate) / _MILLION * factor
        web = web_search_requests * price.web_search_per_1000 / _THOUSAND
        return (tokens + web).quantize(COST_QUANTUM, rounding=ROUND_CEILING)
