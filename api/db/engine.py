"""Engine and session factory: one code path whatever the Postgres (URL, container, embedded)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from api.db.embedded import EmbeddedPostgres
from api.settings import Settings


def to_asyncpg_url(url: str) -> str:
    """Accept postgresql://, postgres:// or postgresql+asyncpg:// and return the asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("not a Postgres URL")


def describe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host and "host=" in parts.query:
        host = parts.query.split("host=", 1)[1].split("&", 1)[0]
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path}"


@dataclass
class DatabaseLocation:
    url: str  # asyncpg form
    embedded: EmbeddedPostgres | None

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def locate_database(settings: Settings) -> DatabaseLocation:
    """`DATABASE_URL` when set; otherwise start (or join) the embedded Postgres."""
    if settings.database_url:
        return DatabaseLocation(to_asyncpg_url(settings.database_url), None)
    embedded = EmbeddedPostgres(settings.data_dir)
    return DatabaseLocation(to_asyncpg_url(embedded.start()), embedded)


def make_engine(url: str, *, pool_size: int = 8, pool_timeout_s: float = 5.0) -> AsyncEngine:
    # No overflow: a connection is held for one short statement, so waiting for a pooled one
    # is far cheaper than opening (and then closing) a new session under load. A wait past
    # `pool_timeout_s` raises sqlalchemy's TimeoutError: "busy" (529), not "down" (503).
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        pool_timeout=pool_timeout_s,
        hide_parameters=True,  # bound values (key hashes, names, user ids) stay out of logs
        connect_args={"timeout": 5, "command_timeout": 10},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
