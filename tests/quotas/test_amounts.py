"""The hard-mode bound covers what the body only points at: images and documents by URL or
file id, and what server tools bring back into the prompt."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from api.pricing.cost import Usage, compute_cost
from api.pricing.model import ModelPrice, Rates
from api.quotas.amounts import (
    DOCUMENT_REF_TOKENS,
    FETCH_RESULT_TOKENS,
    IMAGE_REF_TOKENS,
    SEARCH_RESULT_TOKENS,
    UPSTREAM_PROMPT_ALLOWANCE,
    input_upper_bound,
    reservation,
)

PRICE = ModelPrice(
    model="claude-test-1",
    version="1",
    base=Rates(
        input=Decimal(3),
        output=Decimal(15),
        cache_write_5m=Decimal("3.75"),
        cache_write_1h=Decimal(6),
        cache_read=Decimal("0.30"),
    ),
)


def _body(**extra: Any) -> tuple[bytes, dict[str, Any]]:
    body: dict[str, Any] = {"model": "claude-test-1", "max_tokens": 16, **extra}
    return json.dumps(body).encode(), body


def test_text_only_is_bounded_by_its_bytes() -> None:
    raw, body = _body(messages=[{"role": "user", "content": "hi"}])
    assert input_upper_bound(raw, body) == len(raw) + UPSTREAM_PROMPT_ALLOWANCE


def test_an_image_by_url_gets_more_than_its_few_bytes() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.test/a.png"}}
    raw, body = _body(messages=[{"role": "user", "content": [image]}])
    assert input_upper_bound(raw, body) == len(raw) + UPSTREAM_PROMPT_ALLOWANCE + IMAGE_REF_TOKENS
    # An image of ~1,600 tokens, as the upstream counts a full-size one, fits the reservation.
    hard, _ = reservation(PRICE, raw, body, 16)
    assert hard >= compute_cost(PRICE, Usage(input_tokens=1_600 + len(raw), output_tokens=16))


def test_documents_by_file_id_inside_tool_results_are_found() -> None:
    doc = {"type": "document", "source": {"type": "file", "file_id": "file_1"}}
    inline = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A"}}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": [doc, inline]}
    raw, body = _body(messages=[{"role": "user", "content": [result]}])
    expected = len(raw) + UPSTREAM_PROMPT_ALLOWANCE + DOCUMENT_REF_TOKENS
    assert input_upper_bound(raw, body) == expected


def test_server_tools_reserve_what_they_bring_back() -> None:
    tools = [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
        {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 3},
        {"type": "web_fetch_20250910", "name": "f2", "max_uses": 1, "max_content_tokens": 500},
    ]
    raw, body = _body(messages=[{"role": "user", "content": "x"}], tools=tools)
    expected = (
        len(raw)
        + UPSTREAM_PROMPT_ALLOWANCE
        + 2 * SEARCH_RESULT_TOKENS
        + 3 * FETCH_RESULT_TOKENS
        + 500
    )
    assert input_upper_bound(raw, body) == expected
