"""A gate in front of the simulated upstream: while it is closed, every `POST /v1/messages`
that reaches it waits, so a test can hold admitted requests for exactly as long as it needs
(until a condition holds), instead of guessing a duration with `x-sim-ttft-ms`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from api.http.threaded import embedded_config, serve_in_thread
from api.simulator import SimConfig
from api.simulator.app import ASGIApp, Receive, Scope, Send, create_simulator_app


class UpstreamGate:
    """ASGI: the simulator behind a gate that starts open. Thread-safe `close`/`open`."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._open = True
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.arrived = 0  # requests for /v1/messages seen, held or not
        self.url = ""  # set once served

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def close(self) -> None:
        with self._lock:
            self._open = False

    def open(self) -> None:
        with self._lock:
            self._open = True
            waiting, self._waiting = self._waiting, []
        for loop, event in waiting:
            loop.call_soon_threadsafe(event.set)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/messages":
            event: asyncio.Event | None = None
            with self._lock:
                self.arrived += 1
                if not self._open:
                    event = asyncio.Event()
                    self._waiting.append((asyncio.get_running_loop(), event))
            if event is not None:
                await event.wait()
        await self._app(scope, receive, send)


@contextmanager
def gated_upstream() -> Iterator[UpstreamGate]:
    """The gate (and the simulator behind it) served from a thread; `gate.url` is its base."""
    gate = UpstreamGate(create_simulator_app(SimConfig()))
    running = serve_in_thread(embedded_config(gate), name="upstream-gate", start_timeout_s=60)
    gate.url = running.url
    try:
        yield gate
    finally:
        gate.open()  # let anything still held finish
        running.stop(grace_s=15)
