"""The hot routes (`POST /v1/messages`, `POST /v1/chat/completions`) answered without FastAPI's
router, its dependency solving and the exception and exit-stack middlewares: profiled, that
machinery cost about as much CPU per streamed request as the whole relay (bench/README.md).

This middleware sits just inside the edge (`api/http/limits.py`, `api/http/failsafe.py`), so
body, header and time limits, request ids and the last-line 500 stay exactly as for every other
route. It matches the method and the route path exactly; everything else — another method (405
with `allow`), a trailing slash, every other path — goes on to FastAPI. The routes stay declared
on their FastAPI routers too, which keeps them in the OpenAPI document and answers them when
this middleware is not installed.

A hot endpoint is `async (request) -> Response`: it resolves its own dependencies (the same
functions FastAPI would call) and renders its own route-specific errors. An exception it raises
is answered by the application's exception handlers, looked up as Starlette does (an
`HTTPException` by status code first, then the exception's classes in MRO order); an exception
no handler takes goes on to the failsafe (a logged 500)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

HotEndpoint = Callable[[Request], Awaitable[Response]]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]


def route_path(scope: Scope) -> str:
    """The path the router matches: `path` less the `root_path` it is mounted under (as
    Starlette's router computes it)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def _handler_for(
    handlers: Mapping[object, ExceptionHandler], exc: Exception
) -> ExceptionHandler | None:
    """The handler Starlette's ExceptionMiddleware would pick (a handler for 500 or for
    `Exception` belongs to the outermost error middleware, not to it)."""
    if isinstance(exc, HTTPException) and exc.status_code != 500:
        by_status = handlers.get(exc.status_code)
        if by_status is not None:
            return by_status
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None


class HotRoutesMiddleware:
    def __init__(self, app: ASGIApp, routes: Mapping[str, HotEndpoint]) -> None:
        self.app = app
        self.routes = dict(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.routes.get(route_path(scope))
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = _handler_for(scope["app"].exception_handlers, exc)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)
