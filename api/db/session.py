"""Short-lived database access for commands and a reachability check with a readable error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.engine import describe_url, make_engine, make_sessionmaker
from api.db.errors import DB_ERRORS

T = TypeVar("T")


class DatabaseUnreachable(RuntimeError):
    pass


async def check_database(url: str, timeout_s: float = 5.0) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        async with asyncio.timeout(timeout_s):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except TimeoutError:
        raise DatabaseUnreachable(
            f"cannot reach the database at {describe_url(url)}: no answer within {timeout_s:g}s"
        ) from None
    except DB_ERRORS as exc:  # TimeoutError was handled above
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise DatabaseUnreachable(
            f"cannot reach the database at {describe_url(url)}: {reason}"
        ) from None
    finally:
        await engine.dispose()


async def session_scope(url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction, committed if it returns."""
    engine = make_engine(url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()
