"""One keep-alive HTTP/1.1 connection of the load generator (an asyncio Protocol): sends a
request, reads a streamed (SSE) or whole response, and times it: first byte, first token (by the
API's marker) and end of stream."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

# (first-token marker, end-of-stream marker) per API
MARKERS = {
    "anthropic": (b"content_block_delta", b"event: message_stop"),
    "openai": (b'"delta":{"content":', b"data: [DONE]"),
}


perf = time.perf_counter


class HttpError(Exception):
    pass


@dataclass
class Result:
    status: int = 0
    t_ttfb: float = 0.0
    t_ttft: float = 0.0
    t_total: float = 0.0
    ok: bool = False
    error: str = ""


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; `request()` sends a request and awaits its response.

    The response parser handles chunked and content-length bodies (and close-delimited ones)."""

    def __init__(self, api: str = "anthropic") -> None:
        self._delta_marker, self._stop_marker = MARKERS[api]
        self._tail_len = max(len(self._delta_marker), len(self._stop_marker)) - 1
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buf = bytearray()
        self._done: asyncio.Future[Result] | None = None
        self._res: Result | None = None
        self._t0 = 0.0
        self._state = 0  # 0 headers, 1 chunk-size, 2 chunk-data, 3 chunk-trailer, 4 length, 5 close
        self._remaining = 0
        self._tail = b""
        self._seen_delta = False
        self._seen_stop = False
        self._keepalive = True

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._done is not None and not self._done.done():
            if self._state == 5:  # close-delimited body: this is its end
                self._finish()
            else:
                self._fail("connection closed" + (f": {exc}" if exc else ""))

    def data_received(self, data: bytes) -> None:
        if self._done is None or self._done.done():
            return  # unexpected bytes between responses; ignore
        self._buf += data
        try:
            self._parse()
        except HttpError as exc:
            self._fail(str(exc))

    # -- request/response ---------------------------------------------------------------

    def request(self, payload: bytes) -> asyncio.Future[Result]:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._res = Result()
        self._buf.clear()
        self._state = 0
        self._tail = b""
        self._seen_delta = False
        self._seen_stop = False
        self._keepalive = True
        self._t0 = perf()
        assert self.transport is not None
        self.transport.write(payload)
        return self._done

    def _fail(self, message: str) -> None:
        res = self._res
        assert res is not None and self._done is not None
        res.ok = False
        res.error = message
        res.t_total = perf() - self._t0
        self._keepalive = False
        if not self._done.done():
            self._done.set_result(res)
        if self.transport is not None:
            self.transport.close()

    def _finish(self) -> None:
        res = self._res
        assert res is not None and self._done is not None
        res.t_total = perf() - self._t0
        if res.status != 200:
            res.error = f"http {res.status}"
        elif not self._seen_stop:
            res.error = "stream ended without its end marker"
        else:
            res.ok = True
        if not self._done.done():
            self._done.set_result(res)
        if not self._keepalive and self.transport is not None:
            self.transport.close()

    def _body(self, data: bytes | bytearray) -> None:
        if not data:
            return
        res = self._res
        assert res is not None
        now = perf()
        if not res.t_ttfb:
            res.t_ttfb = now - self._t0
        window = self._tail + bytes(data)
        if not self._seen_delta and self._delta_marker in window:
            self._seen_delta = True
            res.t_ttft = now - self._t0
        if not self._seen_stop and self._stop_marker in window:
            self._seen_stop = True
        self._tail = window[-self._tail_len :]

    def _parse(self) -> None:
        buf = self._buf
        while True:
            st = self._state
            if st == 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > 65536:
                        raise HttpError("response head too large")
                    return
                head = bytes(buf[:end]).decode("latin-1")
                del buf[: end + 4]
                lines = head.split("\r\n")
                parts = lines[0].split(" ", 2)
                if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
                    raise HttpError(f"bad status line {lines[0]!r}")
                assert self._res is not None
                self._res.status = int(parts[1])
                if parts[0] == "HTTP/1.0":
                    self._keepalive = False
                chunked = False
                length = -1
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    value = value.strip()
                    if name == "transfer-encoding" and "chunked" in value.lower():
                        chunked = True
                    elif name == "content-length":
                        length = int(value)
                    elif name == "connection":
                        if value.lower() == "close":
                            self._keepalive = False
                        elif value.lower() == "keep-alive":
                            self._keepalive = True
                if chunked:
                    self._state = 1
                elif length >= 0:
                    self._state = 4
                    self._remaining = length
                    if length == 0:
                        self._finish()
                        return
                else:
                    self._state = 5
                    self._keepalive = False
            elif st == 1:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
                del buf[: end + 2]
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise HttpError(f"bad chunk size {size_text!r}") from None
                if size == 0:
                    self._state = 3
                else:
                    self._remaining = size
                    self._state = 2
            elif st == 2:
                if not buf:
                    return
                n = min(self._remaining, len(buf))
                self._body(buf[:n])
                del buf[:n]
                self._remaining -= n
                if self._remaining:
                    return
                self._state = 6  # the CRLF after chunk data
            elif st == 6:
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise HttpError("missing CRLF after chunk")
                del buf[:2]
                self._state = 1
            elif st == 3:  # trailers, ended by an empty line
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(buf[:end])
                del buf[: end + 2]
                if not line:
                    self._state = 0
                    self._finish()
                    return
            elif st == 4:
                if not buf:
                    return
                n = min(self._remaining, len(buf))
                self._body(buf[:n])
                del buf[:n]
                self._remaining -= n
                if not self._remaining:
                    self._state = 0
                    self._finish()
                return
            elif st == 5:
                if buf:
                    self._body(buf)
                    buf.clear()
                return
