"""SQL for the price book: the change marker the replicas poll, loading every version, and
inserting versions (never updating one)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.pricing.model import RATE_FIELDS, ModelPrice, parse_price, price_to_json

_MARKER = text("SELECT coalesce(max(id), 0), count(*) FROM model_prices")
_LOAD = text(
    "SELECT id, model, effective_from, aliases, display_name, input, output, cache_write_5m, "
    "cache_write_1h, cache_read, modifiers FROM model_prices ORDER BY id"
)
_INSERT = text(
    """
    INSERT INTO model_prices (model, effective_from, aliases, display_name, input, output,
                              cache_write_5m, cache_write_1h, cache_read, modifiers)
    VALUES (:model, :effective_from, :aliases, :display_name, :input, :output,
            :cache_write_5m, :cache_write_1h, :cache_read, CAST(:modifiers AS jsonb))
    ON CONFLICT (model, effective_from) DO NOTHING
    RETURNING id
    """
)
_WRITERS_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('tollgate.model_prices'))")
_MODIFIERS = (
    "tiers",
    "fast_multiplier",
    "geo_multipliers",
    "batch_discount",
    "web_search_per_1000",
    "code_execution_per_hour",
    "note",
    "source",
)


async def marker(conn: AsyncConnection) -> tuple[int, int]:
    """(highest version id, number of versions): changes whenever a version is added."""
    row = (await conn.execute(_MARKER)).one()
    return int(row[0]), int(row[1])


async def load_all(conn: AsyncConnection) -> list[ModelPrice]:
    prices: list[ModelPrice] = []
    for row in (await conn.execute(_LOAD)).mappings():
        raw: dict[str, object] = dict(row["modifiers"])
        raw.update({name: row[name] for name in RATE_FIELDS})
        raw.update(
            model=row["model"],
            effective_from=row["effective_from"],
            aliases=list(row["aliases"]),
            display_name=row["display_name"],
            version=str(row["id"]),
        )
        prices.append(parse_price(raw))
    return prices


async def lock_writers(conn: AsyncConnection) -> None:
    """Serialise writers of the book (a PUT, an import) until the transaction ends."""
    await conn.execute(_WRITERS_LOCK)


async def insert(conn: AsyncConnection, price: ModelPrice) -> str | None:
    """Store a new version; its id, or None when (model, effective_from) already exists."""
    data = price_to_json(price, with_version=False)
    params = {name: getattr(price.base, name) for name in RATE_FIELDS}
    params.update(
        model=price.model,
        effective_from=price.effective_from,
        aliases=list(price.aliases),
        display_name=price.display_name,
        modifiers=json.dumps({k: data[k] for k in _MODIFIERS if data[k] not in (None, [], {})}),
    )
    found = (await conn.execute(_INSERT, params)).scalar_one_or_none()
    return None if found is None else str(found)


async def insert_many(conn: AsyncConnection, prices: Iterable[ModelPrice]) -> list[str | None]:
    return [await insert(conn, price) for price in prices]
