"""How much a request may cost at most (hard mode) and is expected to cost (soft mode).

The input bound is the size of the JSON body in bytes plus a fixed allowance for the prompts
the upstream adds itself (tool-use system prompt and the like). A token is never shorter than
one byte of the text it encodes, and the JSON around the text only adds bytes, so for text the
body size is an upper bound on the input tokens.

Content the body only points at is not in its bytes, so it gets an allowance of its own:
an image or a document whose source is a URL or an uploaded file (`url`/`file` sources;
inline base64 is already counted by its bytes), and what server tools bring back into the
prompt (each web search or web fetch the tools may make). The constants below are the largest
amounts Anthropic documents for each (an image is scaled to at most ~1.15 megapixels, about
1,600 tokens, and larger on high-resolution models; a PDF has at most 100 pages of text and
page image). Requests that may write the prompt cache are priced at the cache-write rate; a
web search tool reserves its `max_uses` (or DEFAULT_WEB_SEARCHES when it sets none — the one
case a hard reservation cannot bound)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Any

from api.pricing.cost import COST_QUANTUM, worst_case_cost
from api.pricing.model import ModelPrice

UPSTREAM_PROMPT_ALLOWANCE = 1024
DEFAULT_WEB_SEARCHES = 10
DEFAULT_WEB_FETCHES = 10
IMAGE_REF_TOKENS = 5_000  # an image by URL or file id
DOCUMENT_REF_TOKENS = 100 * 5_000  # a PDF by URL or file id: 100 pages of text + page image
SEARCH_RESULT_TOKENS = 25_000  # what one web search adds to the prompt
FETCH_RESULT_TOKENS = 100_000  # one web fetch without max_content_tokens
_REF_SOURCES = ("url", "file")
_MAX_WALK_DEPTH = 64
# Soft mode reserves this share of the worst case (typical replies use far less than
# max_tokens and prompts far fewer tokens than bytes).
SOFT_SHARE = Decimal("0.25")


def input_upper_bound(raw_body: bytes, body: dict[str, Any] | None = None) -> int:
    bound = len(raw_body) + UPSTREAM_PROMPT_ALLOWANCE
    if body is not None:
        bound += referenced_media_tokens(body.get("messages"), 0)
        bound += web_searches(body) * SEARCH_RESULT_TOKENS + web_fetch_tokens(body)
    return bound


def referenced_media_tokens(node: object, depth: int) -> int:
    """The allowance for images and documents that the body names by URL or file id, wherever
    they sit (message content, tool results)."""
    if depth > _MAX_WALK_DEPTH:
        return 0
    if isinstance(node, list):
        return sum(referenced_media_tokens(item, depth + 1) for item in node)
    if not isinstance(node, dict):
        return 0
    own = 0
    source = node.get("source")
    if isinstance(source, dict) and source.get("type") in _REF_SOURCES:
        kind = node.get("type")
        own = IMAGE_REF_TOKENS if kind == "image" else DOCUMENT_REF_TOKENS
    return own + referenced_media_tokens(node.get("content"), depth + 1)


def _server_tools(body: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [t for t in tools if isinstance(t, dict) and str(t.get("type", "")).startswith(prefix)]


def _uses(tool: dict[str, Any], default: int) -> int:
    uses = tool.get("max_uses")
    return uses if isinstance(uses, int) and uses > 0 else default


def web_searches(body: dict[str, Any]) -> int:
    return sum(_uses(tool, DEFAULT_WEB_SEARCHES) for tool in _server_tools(body, "web_search"))


def web_fetch_tokens(body: dict[str, Any]) -> int:
    """What the web fetch tool may bring into the prompt: its uses times its content cap."""
    total = 0
    for tool in _server_tools(body, "web_fetch"):
        cap = tool.get("max_content_tokens")
        per_fetch = cap if isinstance(cap, int) and cap > 0 else FETCH_RESULT_TOKENS
        total += _uses(tool, DEFAULT_WEB_FETCHES) * per_fetch
    return total


def reservation(
    price: ModelPrice, raw_body: bytes, body: dict[str, Any], max_tokens: int
) -> tuple[Decimal, Decimal]:
    """(hard, soft): the worst-case cost, and the soft-mode estimate."""
    hard = worst_case_cost(
        price,
        input_upper_bound(raw_body, body),
        max_tokens,
        cache_writes=b"cache_control" in raw_body,
        web_search_requests=web_searches(body),
        fast=body.get("speed") == "fast",
    )
    soft = (hard * SOFT_SHARE).quantize(COST_QUANTUM, rounding=ROUND_CEILING)
    return hard, soft
