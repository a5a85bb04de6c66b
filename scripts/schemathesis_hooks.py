"""Schemathesis hooks for `make schemathesis`: the rules the OpenAPI document states only in
words, because JSON Schema cannot compare two values: `from` before `to`, distinct tier
thresholds, an alias other than the model id, cache rates derived from the input rate below
10^6, custom_ids unique in a batch, web search `max_uses` at most 1,000,000 in all, a rotated
key's revoke_at not in the past. Generated cases that break one of them are dropped: the
service refuses them with a 400 that names the rule, as documented, so they are neither valid
data to accept nor the schema violations the negative checks look for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import schemathesis

from api.errors import InvalidRequest
from api.inputs import whole_number
from api.reports.params import parse_instant

MAX_WEB_SEARCHES = 1_000_000


def _ordered(start: object, end: object) -> bool:
    if not isinstance(start, str) or not isinstance(end, str):
        return True
    try:
        return parse_instant("from", start) < parse_instant("to", end)
    except InvalidRequest:
        return True  # a malformed value: the schema's business, not this rule's


def _uses_fit(body: object) -> bool:
    tools = body.get("tools") if isinstance(body, dict) else None
    if not isinstance(tools, list):
        return True
    uses = [whole_number(t.get("max_uses")) for t in tools if isinstance(t, dict)]
    return sum(u for u in uses if u is not None) <= MAX_WEB_SEARCHES


def _distinct(values: list[Any]) -> bool:
    hashable = [repr(v) for v in values]
    return len(set(hashable)) == len(hashable)


def _derived_rates_fit(rates: dict[str, Any]) -> bool:
    """Omitted cache-write rates are 1.25x and 2x the input rate, and must stay below 10^6."""
    try:
        base = float(rates.get("input"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True
    factors = {"cache_write_5m": 1.25, "cache_write_1h": 2.0}
    return all(rates.get(k) is not None or base * f < 1e6 for k, f in factors.items())


def _price_rules_hold(model: object, body: object) -> bool:
    if not isinstance(body, dict):
        return True
    tiers = body.get("tiers") if isinstance(body.get("tiers"), list) else []
    if not all(_derived_rates_fit(r) for r in [body, *tiers] if isinstance(r, dict)):
        return False
    aliases = body.get("aliases")
    if isinstance(aliases, list) and model in aliases:
        return False
    return _distinct([t.get("above_input_tokens") for t in tiers if isinstance(t, dict)])


def _batch_rules_hold(body: object) -> bool:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list):
        return True
    entries = [r for r in requests if isinstance(r, dict)]
    return _distinct([r.get("custom_id") for r in entries]) and all(
        _uses_fit(r.get("params")) for r in entries
    )


def _in_the_future(when: object) -> bool:
    if not isinstance(when, str):
        return True
    try:
        moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return True
    return moment.tzinfo is None or moment > datetime.now(UTC)


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    path, method = case.operation.path, case.method.upper()
    body = case.body if isinstance(case.body, dict) else None
    if path in ("/admin/usage", "/v1/usage") and isinstance(case.query, dict):
        return _ordered(case.query.get("from"), case.query.get("to"))
    if path == "/admin/prices/{model}/recost" and body is not None:
        return _ordered(body.get("from"), body.get("to"))
    if path == "/admin/prices/{model}" and method == "PUT":
        return _price_rules_hold((case.path_parameters or {}).get("model"), body)
    if path in ("/v1/messages", "/v1/messages/count_tokens"):
        return _uses_fit(body)
    if path == "/admin/keys/{key_id}/rotate" and body is not None:
        return _in_the_future(body.get("revoke_at"))
    if path == "/v1/messages/batches" and method == "POST":
        return _batch_rules_hold(body)
    return True
