"""uvicorn's httptools protocol with the two limits it lacks: a bound on the request head
(request line plus headers) and a deadline for it to arrive.

httptools accumulates a header of any size before uvicorn sees it, so a limit applied to the
parsed headers comes too late to bound memory: this counts raw bytes as they arrive and
answers 431 (and closes) once the head passes TOLLGATE_MAX_HEADER_BYTES, holding at most that
plus one read. A head not complete within TOLLGATE_HEADER_TIMEOUT_S of its first byte (or of
the connection opening) gets 408 and the connection is closed: slow-header (slowloris)
connections cannot be held open. The body's own deadline is enforced by the ASGI middleware
in `api.http.limits`."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.settings import Settings

DEFAULT_MAX_HEADER_BYTES = 32 * 1024
DEFAULT_HEADER_TIMEOUT_S = 10.0


def bounded(config: Config, settings: Settings) -> Config:
    """`config` serving with `BoundedHttpToolsProtocol` and the settings' head limits (kept on
    the config, so worker processes, which receive a copy of it, apply the same ones)."""
    config.http = BoundedHttpToolsProtocol
    config.max_header_bytes = settings.max_header_bytes  # type: ignore[attr-defined]
    config.header_timeout_s = float(settings.header_timeout_s)  # type: ignore[attr-defined]
    return config


def _plain_response(status: int, reason: bytes, message: bytes) -> bytes:
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(message),
            b"connection: close\r\n\r\n",
            message,
        ]
    )


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes = getattr(config, "max_header_bytes", DEFAULT_MAX_HEADER_BYTES)
        self.head_timeout_s = getattr(config, "header_timeout_s", DEFAULT_HEADER_TIMEOUT_S)
        self.head_bytes = 0
        self.reading_head = True
        self.message_ended = False
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.message_ended = False
        super().data_received(data)
        # A chunk that ended a message is not counted: its bytes were mostly that message's.
        if self.reading_head and not self.message_ended and not self.transport.is_closing():
            self.head_bytes += len(data)
            if self.head_bytes > self.max_head_bytes:
                self._refuse(431, b"Request Header Fields Too Large", b"request head too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reading_head = True
        self.head_bytes = 0
        if self.head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self.reading_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading_head = True  # whatever comes next is the next request's head
        self.head_bytes = 0
        self.message_ended = True

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self.head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.reading_head and not self.transport.is_closing():
            idle = self.head_bytes == 0 and self.cycle is not None
            if idle:  # between requests on a keep-alive connection: just close
                self.transport.close()
            else:
                self._refuse(408, b"Request Timeout", b"request head not received in time")

    def _refuse(self, status: int, reason: bytes, message: bytes) -> None:
        self._cancel_head_timer()
        self.logger.warning("refused a request: %s", message.decode())
        self.transport.write(_plain_response(status, reason, message))
        self.transport.close()
