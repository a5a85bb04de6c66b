"""Ways to run the simulated upstream: blocking, in a daemon thread, or as a task in this loop.

The embedded runners (thread and task) bind their socket first, so `port=0` yields a free
port, and they leave the host process's logging and signal handlers alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.simulator.app import SimulatorApp, create_simulator_app
from api.simulator.config import SimConfig

_START_TIMEOUT_S = 10.0
_DEFAULT_GRACE_S = 1.0


def _uvicorn_config(config: SimConfig, host: str, port: int, *, embedded: bool) -> uvicorn.Config:
    config_class = _EmbeddedConfig if embedded else uvicorn.Config
    return config_class(
        create_simulator_app(config),
        host=host,
        port=port,
        loop="uvloop",
        http=_QuietHttpToolsProtocol if embedded else "httptools",
        interface="asgi3",
        lifespan="off",  # nothing to start; keeps embedded runs quiet
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )


class _QuietHttpToolsProtocol(HttpToolsProtocol):
    """httptools, without access-log lines even when the host process logs uvicorn.access."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.access_log = False


class _EmbeddedConfig(uvicorn.Config):
    """Does not reconfigure the host process's (global) logging."""

    def configure_logging(self) -> None:
        pass


class _EmbeddedServer(uvicorn.Server):
    """Does not take over the host process's signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def run_simulator(host: str, port: int, config: SimConfig) -> None:
    """Serve the simulator until interrupted (blocking; Ctrl+C stops it)."""
    uvicorn.Server(_uvicorn_config(config, host, port, embedded=False)).run()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _url(sock: socket.socket, host: str) -> str:
    port: int = sock.getsockname()[1]
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _close_connections(server: uvicorn.Server) -> None:
    """Hang up on every client still connected (e.g. ones parked by `fail=hang`)."""
    for connection in list(server.server_state.connections):
        transport = connection.transport
        if transport is not None:
            transport.close()


class RunningSimulator:
    """A simulator serving from a daemon thread. `url` has no `/v1` suffix."""

    def __init__(self, url: str, server: uvicorn.Server, sock: socket.socket) -> None:
        self.url = url
        self._server = server
        self._sock = sock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="tollgate-simulator", daemon=True)

    @property
    def app(self) -> SimulatorApp:
        """The running app: its `calls` log and its `resources` (batches, files)."""
        app = self._server.config.app
        assert isinstance(app, SimulatorApp)
        return app

    def _main(self) -> None:
        with asyncio.Runner(loop_factory=self._server.config.get_loop_factory()) as runner:
            runner.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._server.serve(sockets=[self._sock])

    def _start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                self._sock.close()
                raise RuntimeError(f"simulator failed to start on {self.url}")
            time.sleep(0.005)

    def stop(self, grace_s: float = _DEFAULT_GRACE_S) -> None:
        """Stop serving; clients still connected after `grace_s` seconds are hung up on."""
        self._server.should_exit = True
        self._thread.join(grace_s)
        if self._thread.is_alive() and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                self._loop.call_soon_threadsafe(_close_connections, self._server)
            self._thread.join(_START_TIMEOUT_S)


def start_simulator_thread(
    config: SimConfig = SimConfig(),  # noqa: B008
    host: str = "127.0.0.1",
    port: int = 0,
) -> RunningSimulator:
    """Serve the simulator from a daemon thread; returns once it accepts connections."""
    sock = _bind(host, port)
    server = _EmbeddedServer(_uvicorn_config(config, host, port, embedded=True))
    running = RunningSimulator(_url(sock, host), server, sock)
    running._start()
    return running


@dataclass
class RunningSimulatorTask:
    """A simulator serving from a task in the current event loop. `url` has no `/v1` suffix."""

    url: str
    _server: uvicorn.Server
    _task: asyncio.Task[None]

    async def stop(self, grace_s: float = _DEFAULT_GRACE_S) -> None:
        """Stop serving; clients still connected after `grace_s` seconds are hung up on."""
        self._server.should_exit = True
        _done, pending = await asyncio.wait((self._task,), timeout=grace_s)
        if pending:
            _close_connections(self._server)
        await self._task


async def start_simulator_task(
    config: SimConfig = SimConfig(),  # noqa: B008
    host: str = "127.0.0.1",
    port: int = 0,
) -> RunningSimulatorTask:
    """Serve the simulator from a task in the running loop; returns once it accepts connections."""
    sock = _bind(host, port)
    server = _EmbeddedServer(_uvicorn_config(config, host, port, embedded=True))
    url = _url(sock, host)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="tollgate-simulator")
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            await asyncio.gather(task, return_exceptions=True)
            raise RuntimeError(f"simulator failed to start on {url}")
        await asyncio.sleep(0.005)
    return RunningSimulatorTask(url=url, _server=server, _task=task)
