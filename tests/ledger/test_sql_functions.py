"""The readable `.sql` files in api/ledger/sql/ are the functions the migrations create.

Each file is loaded into a scratch schema of a migrated database, and Postgres's own rendering
of it (`pg_get_functiondef`) is compared with its rendering of the migrated function, with runs
of whitespace folded to one space (indentation and line breaks may differ; a changed word, type
or parameter may not). Everything runs in a transaction that is rolled back."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.ledger.functions import SQL_FUNCTIONS, definition

SCRATCH = "tollgate_sql_file"

_DEFS = text(
    """
    SELECT pg_get_functiondef(p.oid)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = :schema AND p.proname = :name
    """
)


def normalised(functiondef: str, schema: str) -> str:
    unqualified = functiondef.replace(f"FUNCTION {schema}.", "FUNCTION ", 1)
    return re.sub(r"\s+", " ", unqualified).strip()


async def definitions(conn: AsyncConnection, schema: str, name: str) -> list[str]:
    rows = (await conn.execute(_DEFS, {"schema": schema, "name": name})).scalars().all()
    return [normalised(d, schema) for d in rows]


@pytest.mark.parametrize("name", SQL_FUNCTIONS)
async def test_the_sql_file_is_what_the_migrations_define(engine: AsyncEngine, name: str) -> None:
    async with engine.connect() as conn:
        migrated = await definitions(conn, "public", name)
        assert len(migrated) == 1, f"{name}: expected one definition, found {len(migrated)}"
        await conn.execute(text(f"CREATE SCHEMA {SCRATCH}"))
        await conn.execute(text(f"SET LOCAL search_path = {SCRATCH}"))
        await conn.exec_driver_sql(definition(name))
        [from_file] = await definitions(conn, SCRATCH, name)
        await conn.rollback()
    assert from_file == migrated[0], (
        f"api/ledger/sql/{name}.sql differs from the function the migrations define; "
        "update the file to the migration that last redefined it"
    )


async def test_a_changed_word_is_noticed(engine: AsyncEngine) -> None:
    """The comparison is real: the same file with one condition changed does not match."""
    changed = definition("tollgate_settle").replace("RETURN false;", "RETURN true;", 1)
    async with engine.connect() as conn:
        [migrated] = await definitions(conn, "public", "tollgate_settle")
        await conn.execute(text(f"CREATE SCHEMA {SCRATCH}"))
        await conn.execute(text(f"SET LOCAL search_path = {SCRATCH}"))
        await conn.exec_driver_sql(changed)
        [from_file] = await definitions(conn, SCRATCH, "tollgate_settle")
        await conn.rollback()
    assert from_file != migrated
