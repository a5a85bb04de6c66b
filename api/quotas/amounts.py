"""How much a request may cost at most (hard mode) and is expected to cost (soft mode).

The input bound is the size of the JSON body in bytes plus a fixed allowance for the prompts
the upstream adds itself (tool-use system prompt and the like). A token is never shorter than
one byte of the text it encodes, and the JSON around the text only adds bytes, so for text the
body size is an upper bound on the input tokens. Requests that may write the prompt cache are
priced at the cache-write rate; a web search tool reserves its `max_uses` (or
DEFAULT_WEB_SEARCHES when it sets none — the one case a hard reservation cannot bound)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Any

from api.pricing.cost import COST_QUANTUM, worst_case_cost
from api.pricing.model import ModelPrice

UPSTREAM_PROMPT_ALLOWANCE = 1024
DEFAULT_WEB_SEARCHES = 10
# Soft mode reserves this share of the worst case (typical replies use far less than
# max_tokens and prompts far fewer tokens than bytes).
SOFT_SHARE = Decimal("0.25")


def input_upper_bound(raw_body: bytes) -> int:
    return len(raw_body) + UPSTREAM_PROMPT_ALLOWANCE


def web_searches(body: dict[str, Any]) -> int:
    total = 0
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and str(tool.get("type", "")).startswith("web_search"):
            uses = tool.get("max_uses")
            total += uses if isinstance(uses, int) and uses > 0 else DEFAULT_WEB_SEARCHES
    return total


def reservation(
    price: ModelPrice, raw_body: bytes, body: dict[str, Any], max_tokens: int
) -> tuple[Decimal, Decimal]:
    """(hard, soft): the worst-case cost, and the soft-mode estimate."""
    hard = worst_case_cost(
        price,
        input_upper_bound(raw_body),
        max_tokens,
        cache_writes=b"cache_control" in raw_body,
        web_search_requests=web_searches(body),
        fast=body.get("speed") == "fast",
    )
    soft = (hard * SOFT_SHARE).quantize(COST_QUANTUM, rounding=ROUND_CEILING)
    return hard, soft
