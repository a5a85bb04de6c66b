"""The versioned model price table, loaded from ``prices.json`` (package data).

``prices.json`` is a JSON list of versions::

    [{"version": "2026-11-01", "effective_from": "2026-11-01", "models": [MODEL, ...]}, ...]

and every MODEL is::

    {"id": "claude-sonnet-4-5-20250929",                    # canonical id, also in "ids"
     "ids": ["claude-sonnet-4-5-20250929", "claude-sonnet-4-5"],  # exact matches only
     "input": "3", "output": "15", "cache_write_5m": "3.75",   # USD per million tokens,
     "cache_write_1h": "6", "cache_read": "0.30",             # as decimal strings
     "long_context": {"threshold_input_tokens": 200000, "input": "6", ...},  # optional
     "web_search_per_1000": "10.00",
     "data_residency_multiplier": "1.1"}                      # optional

Prices are decimal strings and become :class:`~decimal.Decimal`; no float is ever built. The
file is validated strictly: an unknown or missing key, a malformed number, or an id claimed by
two models raises ``ValueError`` naming the version, the model and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

__all__ = ["ModelPrice", "PriceTable", "Rates", "load_price_table", "price_table_from_json"]

_DECIMAL_RE = re.compile(r"[0-9]+(\.[0-9]+)?")
_RATE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
_MODEL_REQUIRED = frozenset({"id", "ids", "web_search_per_1000", *_RATE_FIELDS})
_MODEL_OPTIONAL = frozenset({"long_context", "data_residency_multiplier"})
_LONG_CONTEXT_KEYS = frozenset({"threshold_input_tokens", *_RATE_FIELDS})
_VERSION_KEYS = frozenset({"version", "effective_from", "models"})


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens for each token class."""

    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Everything needed to price one request to one model.

    ``long_context`` rates replace ``base`` for the whole request when its total input tokens
    (input + cache writes + cache reads) are strictly above ``long_context_threshold``.
    ``data_residency_multiplier`` scales the token cost (not web search) when the usage reports
    ``inference_geo == "us"``.
    """

    canonical_id: str
    base: Rates
    web_search_per_1000: Decimal
    long_context: Rates | None = None
    long_context_threshold: int | None = None
    data_residency_multiplier: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.long_context is None) != (self.long_context_threshold is None):
            raise ValueError(
                f"{self.canonical_id}: long_context and long_context_threshold go together"
            )


@dataclass(frozen=True, slots=True)
class PriceTable:
    """One version of the price table. ``lookup`` is an exact-id dict lookup."""

    version: str
    effective_from: date
    models: tuple[ModelPrice, ...]
    fallback: Rates | None = None
    fallback_web_search_per_1000: Decimal = Decimal("0")
    _by_id: Mapping[str, ModelPrice] = field(default_factory=dict, repr=False, compare=False)

    def lookup(self, model_id: str) -> ModelPrice | None:
        """The price of ``model_id`` (exact match on dated ids and aliases).

        An unknown id gets the operator's fallback rates (canonical id = the asked id) when a
        fallback was configured, else ``None``: the caller must refuse the request.
        """
        price = self._by_id.get(model_id)
        if price is not None or self.fallback is None:
            return price
        return ModelPrice(
            canonical_id=model_id,
            base=self.fallback,
            web_search_per_1000=self.fallback_web_search_per_1000,
        )


def load_price_table(
    at: date | None = None, fallback: Rates | None = None, *, path: Path | None = None
) -> PriceTable:
    """Load the newest price version effective on ``at`` (default: today, UTC).

    ``path`` overrides the bundled ``prices.json``. Raises ``ValueError`` on a malformed file
    or when no version is effective yet on ``at``.
    """
    if path is None:
        text = files("api.pricing").joinpath("prices.json").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    return price_table_from_json(text, at, fallback)


def price_table_from_json(
    text: str | bytes, at: date | None = None, fallback: Rates | None = None
) -> PriceTable:
    """Parse and validate a whole price file, then pick the version effective on ``at``."""
    try:
        raw: object = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise ValueError(f"prices.json: not valid JSON: {exc}") from exc
    if not isinstance(raw, list) or not raw:
        raise ValueError("prices.json: expected a non-empty list of versions")
    versions = [_parse_version(i, v) for i, v in enumerate(raw)]
    seen: set[str] = set()
    for table in versions:
        if table.version in seen:
            raise ValueError(f"prices.json: version {table.version!r} appears twice")
        seen.add(table.version)
    day = at if at is not None else datetime.now(UTC).date()
    effective = [t for t in versions if t.effective_from <= day]
    if not effective:
        raise ValueError(f"prices.json: no price version is effective on {day.isoformat()}")
    chosen = max(effective, key=lambda t: (t.effective_from, t.version))
    web_search = max((m.web_search_per_1000 for m in chosen.models), default=Decimal("0"))
    return PriceTable(
        version=chosen.version,
        effective_from=chosen.effective_from,
        models=chosen.models,
        fallback=fallback,
        fallback_web_search_per_1000=web_search,
        _by_id=chosen._by_id,
    )


def _parse_version(index: int, raw: object) -> PriceTable:
    where = f"prices.json: version #{index}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")
    _check_keys(where, raw, _VERSION_KEYS, frozenset())
    version = raw["version"]
    if not isinstance(version, str) or not version:
        raise ValueError(f"{where}: field 'version': expected a non-empty string")
    where = f"prices.json: version {version!r}"
    eff = raw["effective_from"]
    try:
        effective_from = date.fromisoformat(eff) if isinstance(eff, str) else None
    except ValueError:
        effective_from = None
    if effective_from is None:
        raise ValueError(f"{where}: field 'effective_from': expected a YYYY-MM-DD date")
    models_raw = raw["models"]
    if not isinstance(models_raw, list) or not models_raw:
        raise ValueError(f"{where}: field 'models': expected a non-empty list")
    models: list[ModelPrice] = []
    by_id: dict[str, ModelPrice] = {}
    for i, model_raw in enumerate(models_raw):
        price, ids = _parse_model(where, i, model_raw)
        for model_id in ids:
            if model_id in by_id:
                raise ValueError(
                    f"{where} model {price.canonical_id!r}: field 'ids': {model_id!r} is "
                    f"already used by {by_id[model_id].canonical_id!r}"
                )
            by_id[model_id] = price
        models.append(price)
    return PriceTable(version, effective_from, tuple(models), _by_id=by_id)


def _parse_model(version_where: str, index: int, raw: object) -> tuple[ModelPrice, list[str]]:
    where = f"{version_where} model #{index}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")
    canonical = raw.get("id")
    if not isinstance(canonical, str) or not canonical:
        raise ValueError(f"{where}: field 'id': expected a non-empty string")
    where = f"{version_where} model {canonical!r}"
    _check_keys(where, raw, _MODEL_REQUIRED, _MODEL_OPTIONAL)
    ids = raw["ids"]
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, str) and i for i in ids)
        or len(set(ids)) != len(ids)
    ):
        raise ValueError(f"{where}: field 'ids': expected a list of distinct non-empty strings")
    if canonical not in ids:
        raise ValueError(f"{where}: field 'ids': must contain the canonical id {canonical!r}")
    long_context: Rates | None = None
    threshold: int | None = None
    if "long_context" in raw:
        long_context, threshold = _parse_long_context(where, raw["long_context"])
    multiplier: Decimal | None = None
    if "data_residency_multiplier" in raw:
        multiplier = _decimal(where, "data_residency_multiplier", raw["data_residency_multiplier"])
        if multiplier <= 0:
            raise ValueError(f"{where}: field 'data_residency_multiplier': must be above 0")
    price = ModelPrice(
        canonical_id=canonical,
        base=_parse_rates(where, raw),
        web_search_per_1000=_decimal(where, "web_search_per_1000", raw["web_search_per_1000"]),
        long_context=long_context,
        long_context_threshold=threshold,
        data_residency_multiplier=multiplier,
    )
    return price, [str(i) for i in ids]


def _parse_long_context(where: str, raw: object) -> tuple[Rates, int]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: field 'long_context': expected an object")
    where = f"{where} long_context"
    _check_keys(where, raw, _LONG_CONTEXT_KEYS, frozenset())
    threshold = raw["threshold_input_tokens"]
    if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold <= 0:
        raise ValueError(f"{where}: field 'threshold_input_tokens': expected a positive integer")
    return _parse_rates(where, raw), threshold


def _parse_rates(where: str, raw: Mapping[str, object]) -> Rates:
    values = [_decimal(where, name, raw[name]) for name in _RATE_FIELDS]
    return Rates(*values)


def _decimal(where: str, name: str, value: object) -> Decimal:
    if not isinstance(value, str) or _DECIMAL_RE.fullmatch(value) is None:
        raise ValueError(
            f'{where}: field {name!r}: expected a non-negative decimal string like "3.75", '
            f"got {value!r}"
        )
    return Decimal(value)


def _check_keys(
    where: str, raw: Mapping[str, object], required: frozenset[str], optional: frozenset[str]
) -> None:
    missing = sorted(required - raw.keys())
    if missing:
        raise ValueError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
    unknown = sorted(raw.keys() - required - optional)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
