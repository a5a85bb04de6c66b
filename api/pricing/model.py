"""One price version of one model, and the single parser every source goes through (the
shipped file, `tollgate prices import`, `PUT /admin/prices/{model}` and the database rows).

A version is immutable: a price change is a new version with a later ``effective_from``.
Prices are USD per million tokens, kept as :class:`~decimal.Decimal` (never a float).
Omitted cache rates default to 1.25x (5 min write), 2x (1 h write) and 0.1x (read) the input
rate, in the base rates and in each tier alike."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from api.inputs import MODEL_ID_PATTERN, clip, text_problem, whole_number
from api.money import format_usd

__all__ = ["ModelPrice", "PriceError", "Rates", "Tier", "parse_price", "price_to_json"]

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
RATE_FIELDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
_DEFAULT_FACTORS = {"cache_write_5m": Decimal("1.25"), "cache_write_1h": Decimal(2)}
_DEFAULT_READ = Decimal("0.1")
_MODEL_ID = re.compile(MODEL_ID_PATTERN)
_MAX_RATE = Decimal(10) ** 6
RATE_QUANTUM = Decimal("1E-12")
"""Rates and multipliers have at most 12 decimal places (derived ones are rounded to it), so
everything stored reads back under the same rules."""
MAX_PRICE_TEXT = 2000  # display_name, note, source
MAX_GEO_LENGTH = 64
RATE_TEXT = r"^(0|[1-9][0-9]{0,5})(\.[0-9]{1,12})?$"
"""A rate as a decimal string: digits without leading zeros, an optional fraction of up to 12
digits; below 10^6."""
POSITIVE_RATE_TEXT = r"^([1-9][0-9]{0,5}(\.[0-9]{1,12})?|0\.[0-9]{0,11}[1-9])$"
"""The documented form of a rate that must be above 0."""
_RATE_TEXT = re.compile(RATE_TEXT)
_KEYS = frozenset(
    {
        "model",
        "aliases",
        "display_name",
        "effective_from",
        "tiers",
        "fast_multiplier",
        "geo_multipliers",
        "batch_discount",
        "web_search_per_1000",
        "code_execution_per_hour",
        "note",
        "source",
        "version",
        *RATE_FIELDS,
    }
)


class PriceError(ValueError):
    """A price entry that cannot be accepted; the message names the model and the field."""


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens for each token class."""

    input: Decimal
    output: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal


@dataclass(frozen=True, slots=True)
class Tier:
    """Rates for a whole request whose prompt (input + cache reads + cache writes) is strictly
    above ``above_input_tokens``."""

    above_input_tokens: int
    rates: Rates


@dataclass(frozen=True, slots=True, eq=False)
class ModelPrice:
    """Everything needed to price one request to one model, as in force from
    ``effective_from``. ``version`` is the book's id of this version ("" before it is stored)."""

    model: str
    base: Rates
    aliases: tuple[str, ...] = ()
    display_name: str | None = None
    effective_from: datetime = EPOCH
    version: str = ""
    tiers: tuple[Tier, ...] = ()
    fast_multiplier: Decimal | None = None
    geo_multipliers: Mapping[str, Decimal] = field(default_factory=dict)
    batch_discount: Decimal = Decimal("0.5")
    web_search_per_1000: Decimal = Decimal(10)
    code_execution_per_hour: Decimal | None = None
    note: str | None = None
    source: str | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.model, *self.aliases)

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The rates of a whole request with this many prompt tokens (highest tier crossed)."""
        chosen = self.base
        for tier in self.tiers:  # sorted by threshold
            if prompt_tokens > tier.above_input_tokens:
                chosen = tier.rates
        return chosen

    def same_terms(self, other: ModelPrice) -> bool:
        """Equal prices and names, whatever the version id (import idempotence)."""
        return price_to_json(self, with_version=False) == price_to_json(other, with_version=False)


def parse_price(raw: Mapping[str, object], model: str | None = None) -> ModelPrice:
    """Validate one entry. ``model`` (from a URL path) wins over ``raw["model"]``."""
    name = model if model is not None else raw.get("model")
    if not isinstance(name, str) or _MODEL_ID.fullmatch(name) is None:
        raise PriceError(f"model: expected a model id, got {name!r}")
    where = f"price of {name}"
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise PriceError(f"{where}: unknown field(s) {', '.join(unknown)}")
    aliases = _aliases(where, raw.get("aliases", []), name)
    tiers = tuple(
        sorted(
            (_tier(f"{where}: tiers[{i}]", t) for i, t in enumerate(_list(where, raw, "tiers"))),
            key=lambda t: t.above_input_tokens,
        )
    )
    if len({t.above_input_tokens for t in tiers}) != len(tiers):
        raise PriceError(f"{where}: tiers: two tiers share a threshold")
    geo = raw.get("geo_multipliers", {})
    if not isinstance(geo, Mapping) or not all(
        isinstance(k, str) and text_problem(k, MAX_GEO_LENGTH) is None for k in geo
    ):
        raise PriceError(
            f"{where}: geo_multipliers: expected an object of geo (1 to {MAX_GEO_LENGTH} "
            "characters, no control characters) -> multiplier"
        )
    return ModelPrice(
        model=name,
        base=_rates(where, raw),
        aliases=aliases,
        display_name=_text(where, raw, "display_name"),
        effective_from=_time(where, raw.get("effective_from")),
        version=str(raw.get("version") or ""),
        tiers=tiers,
        fast_multiplier=_optional(where, raw, "fast_multiplier", positive=True),
        geo_multipliers={
            k: _decimal(f"{where}: geo_multipliers.{k}", v, True) for k, v in geo.items()
        },
        batch_discount=_optional(where, raw, "batch_discount", positive=True) or Decimal("0.5"),
        web_search_per_1000=_optional(where, raw, "web_search_per_1000") or Decimal(0)
        if "web_search_per_1000" in raw
        else Decimal(10),
        code_execution_per_hour=_optional(where, raw, "code_execution_per_hour"),
        note=_text(where, raw, "note"),
        source=_text(where, raw, "source"),
    )


def price_to_json(price: ModelPrice, *, with_version: bool = True) -> dict[str, object]:
    """The entry as JSON (money as decimal strings); ``parse_price`` reads it back unchanged."""
    out: dict[str, object] = {"model": price.model, "aliases": list(price.aliases)}
    if with_version:
        out["version"] = price.version
    out["display_name"] = price.display_name
    out["effective_from"] = price.effective_from.astimezone(UTC).isoformat().replace("+00:00", "Z")
    out.update(_rates_json(price.base))
    out["tiers"] = [
        {"above_input_tokens": t.above_input_tokens, **_rates_json(t.rates)} for t in price.tiers
    ]
    out["fast_multiplier"] = _fmt(price.fast_multiplier)
    out["geo_multipliers"] = {k: format_usd(v) for k, v in sorted(price.geo_multipliers.items())}
    out["batch_discount"] = format_usd(price.batch_discount)
    out["web_search_per_1000"] = format_usd(price.web_search_per_1000)
    out["code_execution_per_hour"] = _fmt(price.code_execution_per_hour)
    out["note"] = price.note
    out["source"] = price.source
    return out


def _fmt(value: Decimal | None) -> str | None:
    return None if value is None else format_usd(value)


def _rates_json(rates: Rates) -> dict[str, str]:
    return {name: format_usd(getattr(rates, name)) for name in RATE_FIELDS}


def _rates(where: str, raw: Mapping[str, object]) -> Rates:
    for required in ("input", "output"):
        if raw.get(required) is None:
            raise PriceError(f"{where}: {required}: Field required")
    values = {"input": _decimal(f"{where}: input", raw["input"])}
    values["output"] = _decimal(f"{where}: output", raw["output"])
    for name in ("cache_write_5m", "cache_write_1h"):
        given = raw.get(name)
        values[name] = (
            (values["input"] * _DEFAULT_FACTORS[name]).quantize(RATE_QUANTUM)
            if given is None
            else _decimal(f"{where}: {name}", given)
        )
    read = raw.get("cache_read")
    values["cache_read"] = (
        (values["input"] * _DEFAULT_READ).quantize(RATE_QUANTUM)
        if read is None
        else _decimal(f"{where}: cache_read", read)
    )
    for name, value in values.items():  # a rate derived from the input rate is bounded too
        if value >= _MAX_RATE:
            raise PriceError(f"{where}: {name}: {value} (from the input rate) is not below 1000000")
    return Rates(**{k: v + 0 for k, v in values.items()})


def _tier(where: str, raw: object) -> Tier:
    if not isinstance(raw, Mapping):
        raise PriceError(f"{where}: expected an object")
    extra = sorted(set(raw) - {"above_input_tokens", *RATE_FIELDS})
    if extra:
        raise PriceError(f"{where}: unknown field(s) {', '.join(extra)}")
    threshold = whole_number(raw.get("above_input_tokens"))
    if threshold is None or threshold <= 0:
        raise PriceError(f"{where}: above_input_tokens: expected a positive integer")
    return Tier(threshold, _rates(where, raw))


def _aliases(where: str, raw: object, model: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(
        isinstance(a, str) and _MODEL_ID.fullmatch(a) for a in raw
    ):
        raise PriceError(f"{where}: aliases: expected a list of model ids")
    if len(set(raw)) != len(raw) or model in raw:
        raise PriceError(f"{where}: aliases: must be distinct and differ from the model id")
    return tuple(str(a) for a in raw)


def _list(where: str, raw: Mapping[str, object], name: str) -> list[object]:
    value = raw.get(name, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise PriceError(f"{where}: {name}: expected a list")
    return value


def _text(where: str, raw: Mapping[str, object], name: str) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PriceError(f"{where}: {name}: expected a string")
    problem = text_problem(value, MAX_PRICE_TEXT)
    if problem is not None:
        raise PriceError(f"{where}: {name}: {problem}")
    return value


def _time(where: str, value: object) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise PriceError(f"{where}: effective_from: expected an ISO 8601 time") from None
    else:
        raise PriceError(f"{where}: effective_from: expected an ISO 8601 time")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _optional(
    where: str, raw: Mapping[str, object], name: str, *, positive: bool = False
) -> Decimal | None:
    value = raw.get(name)
    return None if value is None else _decimal(f"{where}: {name}", value, positive)


def _decimal(where: str, value: object, positive: bool = False) -> Decimal:
    """A non-negative amount from a decimal string or a JSON number (read through ``str``)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise PriceError(f"{where}: expected a decimal string or a number, got {clip(value)}")
    if isinstance(value, str) and not _RATE_TEXT.fullmatch(value):
        raise PriceError(f'{where}: expected a decimal string such as "3.75", got {clip(value)}')
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PriceError(f"{where}: expected a decimal string or a number, got {value!r}") from None
    if not amount.is_finite() or amount < 0 or amount >= _MAX_RATE:
        raise PriceError(f"{where}: must be a finite amount between 0 and 1000000")
    if amount != amount.quantize(RATE_QUANTUM):
        raise PriceError(f"{where}: must have at most 12 decimal places")
    if positive and amount == 0:
        raise PriceError(f"{where}: must be above 0")
    return amount + 0
