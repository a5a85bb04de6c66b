"""Ways to run the simulated upstream: blocking, in a daemon thread, or as a task in this loop.

The embedded runners (thread and task) are the shared `api.http.threaded` helpers: they bind
their socket first, so `port=0` yields a free port, and leave the host process's logging and
signal handlers alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.http.threaded import (
    DEFAULT_GRACE_S,
    TaskServer,
    ThreadedServer,
    embedded_config,
    serve_in_task,
    serve_in_thread,
)
from api.simulator.app import SimulatorApp, create_simulator_app
from api.simulator.config import SimConfig

RunningSimulatorTask = TaskServer


class RunningSimulator:
    """A simulator serving from a daemon thread. `url` has no `/v1` suffix."""

    def __init__(self, running: ThreadedServer) -> None:
        self.url = running.url
        self._running = running

    @property
    def app(self) -> SimulatorApp:
        """The running app: its `calls` log and its `resources` (batches, files)."""
        app = self._running.server.config.app
        assert isinstance(app, SimulatorApp)
        return app

    def stop(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Stop serving; clients still connected after `grace_s` seconds are hung up on."""
        self._running.stop(grace_s)


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


def _embedded(config: SimConfig) -> uvicorn.Config:
    # lifespan off: nothing to start, and it keeps embedded runs quiet
    return embedded_config(create_simulator_app(config), http=_QuietHttpToolsProtocol)


def run_simulator(host: str, port: int, config: SimConfig) -> None:
    """Serve the simulator until interrupted (blocking; Ctrl+C stops it)."""
    uvicorn.Server(
        uvicorn.Config(
            create_simulator_app(config),
            host=host,
            port=port,
            http="httptools",
            lifespan="off",
            log_level="warning",
            access_log=False,
            proxy_headers=False,
        )
    ).run()


def start_simulator_thread(
    config: SimConfig = SimConfig(),  # noqa: B008
    host: str = "127.0.0.1",
    port: int = 0,
) -> RunningSimulator:
    """Serve the simulator from a daemon thread; returns once it accepts connections."""
    return RunningSimulator(
        serve_in_thread(_embedded(config), host, port, name="tollgate-simulator")
    )


async def start_simulator_task(
    config: SimConfig = SimConfig(),  # noqa: B008
    host: str = "127.0.0.1",
    port: int = 0,
) -> TaskServer:
    """Serve the simulator from a task in the running loop; returns once it accepts connections."""
    return await serve_in_task(_embedded(config), host, port, name="tollgate-simulator")
