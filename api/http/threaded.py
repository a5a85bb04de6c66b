"""Serve an ASGI app inside this process: from a daemon thread, or from a task in the running loop.

The one helper behind the simulated upstream (`tollgate dev`, tests, benchmarks), the fake
Razorpay and the gateways the tests run. Both runners bind their socket first, so `port=0`
yields a free port, and both leave the host process's logging and signal handlers alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Generator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT_S = 10.0
DEFAULT_GRACE_S = 1.0
TICK_S = 0.1  # uvicorn's: the Date header is refreshed every tenth tick
DRAIN_POLL_S = 0.005

Lifespan = Literal["auto", "on", "off"]
HttpImpl = type[asyncio.Protocol] | Literal["auto", "h11", "httptools"]


class EmbeddedConfig(uvicorn.Config):
    """Does not reconfigure the host process's (global) logging."""

    def configure_logging(self) -> None:
        pass


class EmbeddedServer(uvicorn.Server):
    """Does not take over the host process's signal handlers, and stops as soon as asked
    (`request_exit`): uvicorn's own loop notices `should_exit` on its next 0.1 s tick and then
    pauses another 0.1 s before it waits for the connections, 0.2 s per stop that a test
    suite starting hundreds of servers pays hundreds of times."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def request_exit(self) -> None:
        """Stop serving (from any thread): the main loop wakes at once."""
        self.should_exit = True  # before reading _wake: a loop that starts later sees this
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        """uvicorn's loop (a tick every 0.1 s), woken early by `request_exit`."""
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), TICK_S)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown, waiting for the connections and tasks themselves instead of
        pausing 0.1 s first and then polling every 0.1 s."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(self._drained(), timeout=self.config.timeout_graceful_shutdown)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drained(self) -> None:
        while self.server_state.connections or self.server_state.tasks:
            if self.force_exit:
                break
            await asyncio.sleep(DRAIN_POLL_S)  # connection_lost comes from the transports
        for server in self.servers:
            await server.wait_closed()


def embedded_config(
    app: ASGIApp, *, lifespan: Lifespan = "off", http: HttpImpl = "httptools"
) -> EmbeddedConfig:
    return EmbeddedConfig(
        app,
        loop="auto",
        http=http,
        lifespan=lifespan,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


def bind(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) socket; `port=0` picks a free one."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    """`http://host:port` for a bound socket (a wildcard host is reached on 127.0.0.1)."""
    port: int = sock.getsockname()[1]
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def hang_up(server: uvicorn.Server) -> None:
    """Close every client connection still open (e.g. one parked on a never-ending reply)."""
    for connection in list(server.server_state.connections):
        if connection.transport is not None:
            connection.transport.close()


class ThreadedServer:
    """An ASGI app served by uvicorn from a daemon thread with its own event loop.
    `url` has no path. Use `serve_in_thread` to start one."""

    def __init__(self, server: EmbeddedServer, sock: socket.socket, url: str, name: str) -> None:
        self.url = url
        self.server = server
        self._sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def _main(self) -> None:
        with asyncio.Runner(loop_factory=self.server.config.get_loop_factory()) as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.server.serve(sockets=[self._sock])

    def _start(self, timeout_s: float) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.server.should_exit = True
                self._thread.join(timeout_s)
                self._sock.close()
                raise RuntimeError(f"{self._thread.name} failed to start on {self.url}")
            time.sleep(0.005)

    def stop(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Stop serving; clients still connected after `grace_s` seconds are hung up on."""
        self.server.request_exit()
        self._thread.join(grace_s)
        if self._thread.is_alive() and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                self._loop.call_soon_threadsafe(hang_up, self.server)
            self._thread.join(START_TIMEOUT_S)


def serve_in_thread(
    config: uvicorn.Config,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    name: str = "asgi-server",
    start_timeout_s: float = START_TIMEOUT_S,
) -> ThreadedServer:
    """Serve `config.app` from a daemon thread; returns once it accepts connections."""
    sock = bind(host, port)
    running = ThreadedServer(EmbeddedServer(config), sock, url_of(sock, host), name)
    running._start(start_timeout_s)
    return running


class TaskServer:
    """An ASGI app served by uvicorn from a task in the current event loop. `url` has no path."""

    def __init__(self, server: EmbeddedServer, task: asyncio.Task[None], url: str) -> None:
        self.url = url
        self.server = server
        self._task = task

    async def stop(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Stop serving; clients still connected after `grace_s` seconds are hung up on."""
        self.server.request_exit()
        _done, pending = await asyncio.wait((self._task,), timeout=grace_s)
        if pending:
            hang_up(self.server)
        await self._task


async def serve_in_task(
    config: uvicorn.Config, host: str = "127.0.0.1", port: int = 0, *, name: str = "asgi-server"
) -> TaskServer:
    """Serve `config.app` from a task in the running loop; returns once it accepts connections."""
    sock = bind(host, port)
    server = EmbeddedServer(config)
    url = url_of(sock, host)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=name)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            await asyncio.gather(task, return_exceptions=True)
            raise RuntimeError(f"{name} failed to start on {url}")
        await asyncio.sleep(0.005)
    return TaskServer(server, task, url)
