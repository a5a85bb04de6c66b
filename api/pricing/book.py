"""The price book in memory: every version of every model, looked up by exact id or alias and
by the time a request started. Immutable: a refresh builds a new book and swaps it in.

The shipped file ``prices.json`` (package data) has the same entries as ``GET /admin/prices``,
one per version, plus its sources, interpretations and what could not be found."""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

from api.pricing.model import ModelPrice, PriceError, parse_price

__all__ = ["PriceBook", "family_of", "load_file", "parse_file", "shipped_book"]

_VERSION_PART = re.compile(r"\d{1,2}")


class PriceBook:
    def __init__(self, prices: Iterable[ModelPrice], marker: tuple[int, int] = (0, 0)) -> None:
        self.marker = marker  # (max version id, row count) it was built from
        by_model: dict[str, list[ModelPrice]] = {}
        for price in prices:
            by_model.setdefault(price.model, []).append(price)
        self._versions = {m: sorted(v, key=lambda p: p.effective_from) for m, v in by_model.items()}
        self._starts = {m: [p.effective_from for p in v] for m, v in self._versions.items()}
        self._ids: dict[str, str] = {m: m for m in self._versions}
        for model, versions in self._versions.items():
            for alias in versions[-1].aliases:  # the newest version names the aliases
                self._ids.setdefault(alias, model)

    def __len__(self) -> int:
        return sum(len(v) for v in self._versions.values())

    def canonical(self, model_id: str) -> str | None:
        return self._ids.get(model_id)

    def lookup(self, model_id: str, at: datetime | None = None) -> ModelPrice | None:
        """The version of ``model_id`` (exact id or alias) in force at ``at`` (default now)."""
        model = self._ids.get(model_id)
        if model is None:
            return None
        moment = at if at is not None else datetime.now(UTC)
        index = bisect_right(self._starts[model], moment)
        return self._versions[model][index - 1] if index else None

    def current(self, at: datetime | None = None) -> list[ModelPrice]:
        """The version in force now of every model that has one, newest release first."""
        found = [self.lookup(model, at) for model in self._versions]
        prices = [p for p in found if p is not None]
        return sorted(prices, key=lambda p: (self.first_seen(p.model), p.model), reverse=True)

    def versions(self) -> list[ModelPrice]:
        return [p for model in sorted(self._versions) for p in self._versions[model]]

    def first_seen(self, model: str) -> datetime:
        return self._versions[model][0].effective_from

    def newest_in_family(self, family: str, at: datetime | None = None) -> ModelPrice | None:
        """The priced model of ``family`` with the highest version number (for the
        TOLLGATE_UNKNOWN_MODEL=family fallback)."""
        best: tuple[tuple[int, ...], ModelPrice] | None = None
        for model in self._versions:
            found = family_of(model)
            price = self.lookup(model, at)
            if found is None or found[0] != family or price is None:
                continue
            if best is None or found[1] > best[0]:
                best = (found[1], price)
        return None if best is None else best[1]


def family_of(model_id: str) -> tuple[str, tuple[int, ...]] | None:
    """``claude-opus-4-8`` -> ("opus", (4, 8)); ``claude-3-5-haiku-20241022`` -> ("haiku",
    (3, 5)); anything not ``claude-…`` -> None. Date suffixes are not version numbers."""
    parts = model_id.split("-")
    if len(parts) < 2 or parts[0] != "claude":
        return None
    words = [p for p in parts[1:] if p.isalpha()]
    numbers = tuple(int(p) for p in parts[1:] if _VERSION_PART.fullmatch(p))
    return (words[0], numbers) if words else None


def parse_file(text: str | bytes, where: str = "price file") -> list[ModelPrice]:
    """Every entry of a price file (``{"models": [...]}`` or a bare list), validated."""
    try:
        raw: object = json.loads(text)
    except ValueError as exc:
        raise PriceError(f"{where}: not valid JSON: {exc}") from None
    entries = raw.get("models") if isinstance(raw, dict) else raw
    if not isinstance(entries, list) or not entries:
        raise PriceError(f'{where}: expected {{"models": [...]}} with at least one entry')
    prices: list[ModelPrice] = []
    seen: set[tuple[str, datetime]] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or "effective_from" not in entry:
            raise PriceError(f"{where}: models[{index}]: an object with effective_from")
        price = parse_price(entry)
        if (price.model, price.effective_from) in seen:
            raise PriceError(f"{where}: {price.model} has two versions at one effective_from")
        seen.add((price.model, price.effective_from))
        prices.append(price)
    _check_aliases(prices, where)
    return prices


def _check_aliases(prices: list[ModelPrice], where: str) -> None:
    owners: dict[str, str] = {}
    models = {p.model for p in prices}
    for price in prices:
        for alias in price.aliases:
            if alias in models or owners.setdefault(alias, price.model) != price.model:
                raise PriceError(f"{where}: alias {alias} belongs to two models")


def load_file(path: Path) -> list[ModelPrice]:
    return parse_file(path.read_bytes(), str(path))


def shipped_text() -> str:
    return files("api.pricing").joinpath("prices.json").read_text(encoding="utf-8")


def shipped_book() -> PriceBook:
    """The shipped file as a book, without a database (seeding demo data, unit tests)."""
    return PriceBook(parse_file(shipped_text(), "prices.json"))
