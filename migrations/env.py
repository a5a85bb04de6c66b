"""Alembic environment, async. The URL comes from `config.attributes["url"]` when Tollgate runs
the migrations itself, else from the same settings the app uses."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import api.alerts.models
import api.audit.models
import api.auth.models
import api.reports.models  # noqa: F401  (the usage rollup shares the metadata)
import billing.models  # noqa: F401  (its tables share the metadata)
from api.db.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url")
    if url:
        return str(url)
    from api.db.engine import locate_database
    from api.settings import load_settings

    location = locate_database(load_settings())
    config.attributes["location"] = location
    return location.url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), hide_parameters=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
