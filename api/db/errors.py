"""What "the database is down" and "the database is busy" look like, defined once.

* Down (503 `api_error` + `retry-after`): Postgres cannot be reached — connection refused or
  reset, DNS, authentication, a server starting up or shutting down.
* Busy (529 `overloaded_error` + `retry-after`): Postgres answers, but not within the bound
  this request may wait — the pool had no free connection in time, a statement was cancelled
  by its timeout, or the server has no connection slot left. The SDKs retry both.

`DB_ERRORS` is every exception of either kind; `unavailable(exc)` picks the answer."""

from __future__ import annotations

import asyncpg.exceptions as pg  # type: ignore[import-untyped]
from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.responses import Response

from api.errors import Overloaded, ServiceUnavailable, error_response, request_id_of

DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    TimeoutError,  # asyncio.timeout around a database call, or a connect timeout
    PoolTimeout,  # sqlalchemy's "QueuePool limit … reached, timed out"
)
DB_DOWN_MESSAGE = "the usage database is unavailable; try again shortly"
DB_BUSY_MESSAGE = "Tollgate is overloaded (the usage database is busy); retry shortly"
DOWN_RETRY_AFTER_S = 5
BUSY_RETRY_AFTER_S = 1

_BUSY_ORIGINS: tuple[type[BaseException], ...] = (
    pg.QueryCanceledError,  # statement_timeout or a cancel after our own timeout
    pg.LockNotAvailableError,
    pg.TooManyConnectionsError,
    TimeoutError,
)
_DOWN_ORIGINS: tuple[type[BaseException], ...] = (
    OSError,
    pg.PostgresConnectionError,
    pg.CannotConnectNowError,
    pg.InvalidAuthorizationSpecificationError,
    pg.InterfaceError,
    pg.AdminShutdownError,
)


class DatabaseDown(ServiceUnavailable):
    """503: the database cannot be reached; nothing was spent."""

    def __init__(self, message: str = DB_DOWN_MESSAGE) -> None:
        super().__init__(message, headers={"retry-after": str(DOWN_RETRY_AFTER_S)})


class DatabaseBusy(Overloaded):
    """529: the database answers, but not within this request's bound; nothing was spent."""

    def __init__(self, message: str = DB_BUSY_MESSAGE) -> None:
        super().__init__(message, headers={"retry-after": str(BUSY_RETRY_AFTER_S)})


def is_busy(exc: BaseException) -> bool:
    """True when `exc` (one of DB_ERRORS) means "slow or full", not "unreachable"."""
    if isinstance(exc, PoolTimeout | TimeoutError):
        return True
    return isinstance(_origin(exc), _BUSY_ORIGINS)


def _origin(exc: BaseException) -> BaseException | None:
    origin = getattr(exc, "orig", None)
    # sqlalchemy's asyncpg adapter wraps the driver's error once more
    return getattr(origin, "__cause__", None) or origin


def is_down(exc: BaseException) -> bool:
    """True when `exc` means Postgres cannot be reached (as opposed to a bad statement)."""
    if isinstance(exc, OSError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(_origin(exc), _DOWN_ORIGINS)


def unavailable(exc: BaseException) -> DatabaseDown | DatabaseBusy:
    """The refusal for a request whose database call failed with `exc`."""
    return DatabaseBusy() if is_busy(exc) else DatabaseDown()


def _count_shed(request: Request, reason: str) -> None:
    state = getattr(request.app.state, "tollgate", None)
    metrics = getattr(state, "metrics", None)
    if metrics is not None:
        metrics.shed.labels(reason).inc()


def install_database_error_handlers(app: FastAPI) -> None:
    """Any route whose database call failed because Postgres is busy or unreachable answers
    529 or 503 with `retry-after`, never 500. Other database errors (a bad statement) stay
    unexpected errors."""

    async def on_database_error(request: Request, exc: Exception) -> Response:
        if not (is_busy(exc) or is_down(exc)):
            raise exc
        refusal = unavailable(exc)
        _count_shed(request, "busy" if isinstance(refusal, DatabaseBusy) else "down")
        rid = request_id_of(request)
        return error_response(
            refusal.status, refusal.error_type, refusal.message, rid, refusal.headers
        )

    async def on_refusal(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DatabaseDown | DatabaseBusy)
        _count_shed(request, "busy" if isinstance(exc, DatabaseBusy) else "down")
        rid = request_id_of(request)
        return error_response(exc.status, exc.error_type, exc.message, rid, exc.headers)

    app.add_exception_handler(DatabaseDown, on_refusal)
    app.add_exception_handler(DatabaseBusy, on_refusal)
    app.add_exception_handler(PoolTimeout, on_database_error)
    app.add_exception_handler(DBAPIError, on_database_error)
