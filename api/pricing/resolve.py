"""Which price a request pays: the exact id or alias in force when it started, or (only when
TOLLGATE_UNKNOWN_MODEL=family) the newest priced model of the id's family. Never $0."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from api.pricing.book import PriceBook, family_of
from api.pricing.model import ModelPrice

__all__ = ["Resolved", "resolve", "unknown_model_message"]


@dataclass(frozen=True, slots=True)
class Resolved:
    price: ModelPrice
    fallback: bool  # priced as another model of its family


def resolve(book: PriceBook, model: str, at: datetime, *, family: bool) -> Resolved | None:
    price = book.lookup(model, at)
    if price is not None:
        return Resolved(price, False)
    if not family or book.canonical(model) is not None:
        return None  # a known model with no version in force yet is not a fallback case
    found = family_of(model)
    newest = book.newest_in_family(found[0], at) if found is not None else None
    return None if newest is None else Resolved(newest, True)


def unknown_model_message(model: str) -> str:
    return (
        f"model: {model} has no price in this gateway's price book, so it cannot be metered. "
        f"An operator can add it with `PUT /admin/prices/{model}` "
        f'(body: {{"input": "…", "output": "…"}}) or `tollgate prices import FILE`.'
    )
