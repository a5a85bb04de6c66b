"""Size and time limits for every route, enforced at the ASGI level before any handler runs or
any body is parsed: the header block (431), the declared and the actual body size, chunked or
not (413), and how long the body may take to arrive (408). Refusals use the Anthropic error
shape. The server reads and discards the rest of an oversized body (memory stays bounded),
so clients that send the whole body before reading the answer still see the 413; a timed-out
body closes the connection."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import (
    REQUEST_ID_HEADER,
    HeadersTooLarge,
    InvalidRequest,
    RequestTimeout,
    RequestTooLarge,
    TollgateError,
    error_body,
)
from api.settings import Settings

MULTIPART_ALLOWANCE = 1024 * 1024  # form framing around an uploaded file


@dataclass(frozen=True)
class EdgeLimits:
    max_body_bytes: int
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    # Routes whose bodies may be larger (uploads); they authenticate before reading.
    large_bodies: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> EdgeLimits:
        return cls(
            max_body_bytes=settings.max_body_bytes,
            max_header_bytes=settings.max_header_bytes,
            header_timeout_s=float(settings.header_timeout_s),
            body_timeout_s=float(settings.body_timeout_s),
            large_bodies=(
                ("/v1/messages/batches", settings.batch_max_body_bytes),
                ("/v1/files", settings.files_max_bytes + MULTIPART_ALLOWANCE),
            ),
        )

    def body_limit(self, path: str) -> int:
        for route, limit in self.large_bodies:
            if path == route:
                return max(limit, self.max_body_bytes)
        return self.max_body_bytes


def header_bytes(headers: list[tuple[bytes, bytes]]) -> int:
    """The size of a header block as sent (name, ": ", value, CRLF)."""
    return sum(len(name) + len(value) + 4 for name, value in headers)


def check_head(scope: Scope, limits: EdgeLimits, body_limit: int) -> TollgateError | None:
    """The refusal a request's head alone earns, if any."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    if header_bytes(headers) + len(scope.get("raw_path") or b"") > limits.max_header_bytes:
        return HeadersTooLarge(f"request headers are larger than {limits.max_header_bytes} bytes")
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit() or len(value) > 19:
                return InvalidRequest("content-length: not a valid length")
            if int(value) > limits.max_body_bytes:
                return RequestTooLarge(f"request body is larger than {limits.max_body_bytes} bytes")
    return None


async def send_refusal(send: Send, error: TollgateError, scope: Scope) -> None:
    rid = str(uuid.uuid4())
    scope.setdefault("state", {})["request_id"] = rid
    body = error_body(error.error_type, error.message, rid)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID_HEADER.encode(), rid.encode()),
    ]
    if error.status == 408:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _BodyGuard:
    """Wraps one request's receive and send: counts the body as it arrives and bounds the time
    it may take; once a limit trips, whatever the handler answers is replaced by the refusal."""

    def __init__(
        self, scope: Scope, receive: Receive, send: Send, limits: EdgeLimits, body_limit: int
    ) -> None:
        self.scope, self._receive, self._send = scope, receive, send
        self.limit = body_limit
        # Larger bodies get proportionally longer (an upload route: up to an hour).
        scale = max(1.0, body_limit / limits.max_body_bytes)
        allowed = min(limits.body_timeout_s * scale, max(limits.body_timeout_s, 3600.0))
        self.deadline = asyncio.get_running_loop().time() + allowed
        self.size = 0
        self.done = False
        self.started = False
        self.tripped: TollgateError | None = None

    async def receive(self) -> Message:
        if self.done:
            return await self._receive()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            raise self._trip(RequestTimeout("the request body did not arrive in time")) from None
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > self.limit:
                raise self._trip(RequestTooLarge(f"request body is larger than {self.limit} bytes"))
            self.done = not message.get("more_body", False)
        else:
            self.done = True
        return message

    def _trip(self, error: TollgateError) -> TollgateError:
        self.tripped = error
        self.done = True
        return error

    async def send(self, message: Message) -> None:
        if self.tripped is not None:
            if not self.started and message["type"] == "http.response.start":
                self.started = True
                await send_refusal(self._send, self.tripped, self.scope)
            return  # the refusal replaced whatever the handler had to say
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def finish(self) -> None:
        if self.tripped is not None and not self.started:
            self.started = True
            await send_refusal(self._send, self.tripped, self.scope)


class EdgeLimitsMiddleware:
    def __init__(self, app: ASGIApp, limits: EdgeLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_limit = self.limits.body_limit(scope.get("path", ""))
        refusal = check_head(scope, self.limits, body_limit)
        if refusal is not None:
            await send_refusal(send, refusal, scope)
            return
        guard = _BodyGuard(scope, receive, send, self.limits, body_limit)
        try:
            await self.app(scope, guard.receive, guard.send)
        except TollgateError:
            if guard.tripped is None:
                raise
        await guard.finish()
