"""Changing the price book: add one version (`PUT /admin/prices/{model}`), import a file
(`tollgate prices import`, and the shipped file at start-up). Versions are never changed in
place: the same (model, effective_from) with the same terms is a no-op, with other terms a
conflict. Writers are serialised by an advisory lock, so alias checks cannot race."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.audit import Actor, Snapshot, record
from api.errors import TollgateError
from api.pricing import repository
from api.pricing.book import PriceBook
from api.pricing.model import ModelPrice, price_to_json


class PriceConflict(TollgateError):
    status, error_type = 409, "invalid_request_error"


@dataclass
class ImportReport:
    added: list[ModelPrice] = field(default_factory=list)
    unchanged: int = 0
    conflicts: list[str] = field(default_factory=list)


async def put_price(
    engine: AsyncEngine, price: ModelPrice, actor: Actor, previous: Snapshot = None
) -> tuple[ModelPrice, bool]:
    """Store ``price`` as a new version: (the stored version, True if it was added). An added
    version is recorded in the audit log (``previous``: the version it follows) in the same
    transaction."""
    async with engine.begin() as conn:
        report = await _add(conn, [price])
        for added in report.added:
            after = price_to_json(added)
            await record(conn, actor, "price.put", "price", added.model, previous, after)
    if report.conflicts:
        raise PriceConflict(report.conflicts[0])
    if report.added:
        return report.added[0], True
    async with engine.connect() as conn:
        book = PriceBook(await repository.load_all(conn))
    stored = book.lookup(price.model, price.effective_from)
    assert stored is not None
    return stored, False


async def import_prices(
    engine: AsyncEngine, prices: list[ModelPrice], actor: Actor | None = None
) -> ImportReport:
    """Add every version not yet in the book (idempotent: a second run adds nothing). With an
    ``actor`` (an operator's import, not the shipped file at start-up) each added version is
    recorded in the audit log in the same transaction."""
    async with engine.begin() as conn:
        report = await _add(conn, prices)
        for added in report.added:
            if actor is None:
                break
            await record(
                conn, actor, "price.import", "price", added.model, None, price_to_json(added)
            )
        return report


async def _add(conn: AsyncConnection, prices: list[ModelPrice]) -> ImportReport:
    await repository.lock_writers(conn)
    existing = await repository.load_all(conn)
    at = {(p.model, p.effective_from): p for p in existing}
    report = ImportReport()
    for price in prices:
        old = at.get((price.model, price.effective_from))
        if old is not None:
            if old.same_terms(price):
                report.unchanged += 1
            else:
                report.conflicts.append(
                    f"{price.model} already has a different version effective from "
                    f"{price.effective_from.isoformat()}; give the change a new effective_from"
                )
            continue
        clash = _alias_clash(PriceBook([*existing, *report.added]), price)
        if clash:
            report.conflicts.append(clash)
            continue
        version = await repository.insert(conn, price)
        if version is not None:
            report.added.append(replace(price, version=version))
    return report


def _alias_clash(book: PriceBook, price: ModelPrice) -> str | None:
    owner = book.canonical(price.model)
    if owner is not None and owner != price.model:
        return f"{price.model} is already an alias of {owner}"
    for alias in price.aliases:
        owner = book.canonical(alias)
        if owner is not None and owner != price.model:
            return f"alias {alias} already names {owner}"
    return None
