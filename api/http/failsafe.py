"""The last line for unexpected exceptions: one log line and a 500 in the error shape.

Starlette's own handler for `Exception` answers and then re-raises, so the server logs the
same failure a second time. This middleware sits inside it and swallows what it answered:
each unhandled error is logged exactly once, with the request id. An error after the response
started cannot be answered; it is left to the server, which logs it (once) and closes the
connection."""

from __future__ import annotations

import logging
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import REQUEST_ID_HEADER, error_body

log = logging.getLogger("api.errors")


class FailsafeMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if started:
                raise
            state = scope.setdefault("state", {})
            rid = str(state.get("request_id") or uuid.uuid4())
            log.exception("unhandled error", extra={"request_id": rid})
            body = error_body("api_error", f"internal error (request {rid})", rid)
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (REQUEST_ID_HEADER.encode(), rid.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
