"""What "the database is down" looks like, defined once: the exceptions a connection or a
statement raises when Postgres cannot be reached in time, and the 503 a request gets then."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from api.errors import ServiceUnavailable

DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    TimeoutError,
)
DB_DOWN_MESSAGE = "the usage database is unavailable; try again shortly"


class DatabaseDown(ServiceUnavailable):
    """503: the database did not answer; nothing was spent."""

    def __init__(self, message: str = DB_DOWN_MESSAGE) -> None:
        super().__init__(message)
