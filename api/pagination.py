"""Anthropic-style list pagination (the simulator's lists and Tollgate's own batch and file lists).

Lists are newest first. `after_id` returns the items after that id (older), `before_id` the
items before it (newer, the closest `limit` of them); `has_more` says whether more exist in the
direction of travel. Files also get an opaque `next_page` cursor (`page_<last id>`), which newer
SDKs follow instead of `after_id`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


class PageError(ValueError):
    """A bad pagination parameter (answered with 400)."""


def _limit(query: Mapping[str, str]) -> int:
    raw = query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise PageError(f"limit: expected an integer between 1 and {MAX_LIMIT}, got {raw!r}")
    return int(raw)


def _position(ids: Sequence[str], anchor: str, name: str) -> int:
    try:
        return ids.index(anchor)
    except ValueError:
        raise PageError(f"{name}: unknown id {anchor!r}") from None


def paginate(
    items: Sequence[Mapping[str, Any]], query: Mapping[str, str], *, cursor: bool = False
) -> dict[str, Any]:
    """One page of `items` (already newest first) as `{data, has_more, first_id, last_id}`."""
    limit = _limit(query)
    ids = [str(item["id"]) for item in items]
    after = query.get("after_id")
    page_token = query.get("page")
    if page_token:
        after = page_token.removeprefix("page_")
    before = query.get("before_id")
    if after and before:
        raise PageError("before_id and after_id are mutually exclusive")
    if before:
        end = _position(ids, before, "before_id")
        start = max(0, end - limit)
        page = list(items[start:end])
        has_more = start > 0
    else:
        start = _position(ids, after, "after_id") + 1 if after else 0
        page = list(items[start : start + limit])
        has_more = start + limit < len(items)
    body: dict[str, Any] = {
        "data": page,
        "has_more": has_more,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }
    if cursor:
        body["next_page"] = f"page_{page[-1]['id']}" if page and has_more and not before else None
    return body
