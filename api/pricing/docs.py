"""JSON Schemas of the price routes' request bodies, for the OpenAPI document: what
`parse_price` and the recost route accept. Rules JSON Schema cannot state are in the
descriptions (an alias differs from the model id; tiers have distinct thresholds; `from` is
before `to`)."""

from __future__ import annotations

from typing import Any

from api.inputs import INSTANT_PATTERN, MODEL_ID_PATTERN, text_schema
from api.pricing.model import MAX_GEO_LENGTH, MAX_PRICE_TEXT, POSITIVE_RATE_TEXT, RATE_TEXT

_MAX_RATE = 1e6


def _rate(positive: bool = False, nullable: bool = True) -> dict[str, Any]:
    number: dict[str, Any] = {
        "type": "number",
        "exclusiveMaximum": _MAX_RATE,
        "multipleOf": 1e-12,  # at most 12 decimal places
    }
    number["exclusiveMinimum" if positive else "minimum"] = 0
    text = {"type": "string", "pattern": POSITIVE_RATE_TEXT if positive else RATE_TEXT}
    branches = [text, number, *([{"type": "null"}] if nullable else [])]
    return {"anyOf": branches, "description": "USD per million tokens (or a multiplier)"}


_TEXT_OR_NULL: dict[str, Any] = {"anyOf": [text_schema(MAX_PRICE_TEXT), {"type": "null"}]}
_RATES: dict[str, Any] = {
    "input": _rate(nullable=False),
    "output": _rate(nullable=False),
    "cache_write_5m": _rate(),
    "cache_write_1h": _rate(),
    "cache_read": _rate(),
}
_TIER: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["above_input_tokens", "input", "output"],
    "properties": {"above_input_tokens": {"type": "integer", "minimum": 1}, **_RATES},
}

PRICE_BODY: dict[str, Any] = {
    "title": "PriceIn",
    "description": (
        "A new price version of the model in the path. Omitted cache rates follow the input "
        "rate (1.25x, 2x, 0.1x) and, like every rate, stay below 1,000,000; other omitted "
        "fields keep the model's current values. Aliases are distinct, differ from the model "
        "id and belong to no other model; tiers have distinct thresholds."
    ),
    "type": "object",
    "additionalProperties": False,
    "required": ["input", "output"],
    "properties": {
        **_RATES,
        "aliases": {
            "type": "array",
            "uniqueItems": True,
            "items": {"type": "string", "pattern": MODEL_ID_PATTERN},
        },
        "display_name": _TEXT_OR_NULL,
        "effective_from": {
            "anyOf": [{"type": "string", "pattern": INSTANT_PATTERN}, {"type": "null"}]
        },
        "tiers": {"anyOf": [{"type": "array", "items": _TIER}, {"type": "null"}]},
        "fast_multiplier": _rate(positive=True),
        "geo_multipliers": {
            "type": "object",
            "propertyNames": text_schema(MAX_GEO_LENGTH),
            "additionalProperties": _rate(positive=True, nullable=False),
        },
        "batch_discount": _rate(positive=True),
        "web_search_per_1000": _rate(),
        "code_execution_per_hour": _rate(),
        "note": _TEXT_OR_NULL,
        "source": _TEXT_OR_NULL,
        "version": {"description": "ignored: the service numbers versions itself"},
    },
}

RECOST_BODY: dict[str, Any] = {
    "title": "RecostIn",
    "description": "The window of settled rows to re-price: `from` inclusive, `to` exclusive "
    "(UTC unless an offset is given); `from` must be before `to`.",
    "type": "object",
    "required": ["from", "to"],
    "properties": {
        "from": {"type": "string", "pattern": INSTANT_PATTERN},
        "to": {"type": "string", "pattern": INSTANT_PATTERN},
    },
}
