"""Run the API under uvicorn on a socket the CLI has already bound: one worker in this process,
or N worker processes (each configures the same JSON logging through uvicorn's `log_config`)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from api.db.engine import DatabaseLocation
from api.http.protocol import bounded
from api.logs import configure_logging, logging_config
from api.settings import Settings


class _AnnouncingServer(uvicorn.Server):
    """Calls `on_ready` once the socket accepts connections (after the app's startup), so a
    banner printed from it is never ahead of the server."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn re-raises a captured signal after a clean shutdown, so a SIGTERM'd `serve`
        would exit 143, which supervisors count as a failure. A SIGTERM that led to a clean
        stop (streams finished or settled) exits 0; SIGINT keeps uvicorn's behaviour."""
        with super().capture_signals():
            yield
            self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


def run_server(
    settings: Settings,
    location: DatabaseLocation,
    sock: socket.socket,
    workers: int = 1,
    *,
    human_logs: bool = False,
    on_ready: Callable[[], None] | None = None,
) -> None:
    from api.main import create_app
    from billing.settings import load_billing_settings

    log_config = logging_config(settings.log_level, json_lines=not human_logs)
    configure_logging(settings.log_level, json_lines=not human_logs)
    options: dict[str, Any] = {
        "loop": "uvloop",
        "log_level": settings.log_level,
        "access_log": False,
        "log_config": log_config,
        # SIGTERM: stop accepting, let streams run this long, then cut them (each is settled
        # with what was seen before the heartbeat stops; see api/main.py).
        "timeout_graceful_shutdown": float(settings.shutdown_grace_s),
    }
    if workers <= 1:
        app = create_app(settings, location.url, load_billing_settings())
        config = bounded(uvicorn.Config(app, **options), settings)
        _AnnouncingServer(config, on_ready).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    os.environ["DATABASE_URL"] = location.url  # workers join the same database
    config = uvicorn.Config("api.main:app_factory", factory=True, workers=workers, **options)
    Multiprocess(bounded(config, settings), sockets=[sock]).run()
