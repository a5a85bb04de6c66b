"""What every `tollgate` command shares: one-line errors, binding the listening socket, opening
the database and running one transaction. The parser (api/cli.py) and the handlers
(api/commands.py, api/devmode.py) import this; it imports none of them."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from api.db.embedded import EmbeddedPostgresError
from api.db.engine import DatabaseLocation, locate_database
from api.db.session import DatabaseUnreachable, check_database, session_scope
from api.settings import Settings

T = TypeVar("T")


class CliError(Exception):
    """A failure to report as one line, without a traceback."""


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"tollgate: {message}", file=sys.stderr)
    raise SystemExit(code)


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == 98:  # EADDRINUSE
            raise CliError(
                f"port {port} on {host} is already in use (choose another with --port)"
            ) from None
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def open_database(settings: Settings, *, migrate: bool) -> DatabaseLocation:
    """Locate (or start) the database, check it answers, and optionally migrate it."""
    try:
        location = locate_database(settings)
    except EmbeddedPostgresError as exc:
        raise CliError(str(exc)) from None
    try:
        asyncio.run(check_database(location.url))
        if migrate:
            from api.db.migrate import upgrade

            upgrade(location.url)
    except DatabaseUnreachable as exc:
        location.close()
        raise CliError(str(exc)) from None
    except BaseException:
        location.close()
        raise
    return location


def run_with_session(
    settings: Settings,
    work: Callable[[AsyncSession], Awaitable[T]],
    location: DatabaseLocation | None = None,
) -> T:
    """Run `work` in one committed transaction, on `location` or on a database opened here."""
    if location is not None:
        return asyncio.run(session_scope(location.url, work))
    location = open_database(settings, migrate=False)
    try:
        return asyncio.run(session_scope(location.url, work))
    finally:
        location.close()


def parse_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an id: {value!r}") from None
