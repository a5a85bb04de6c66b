"""Run the fake Razorpay in a daemon thread, and drive it from a test.

    fake = start_fake_razorpay("rzp_test_key", "secret")
    client = razorpay.Client(auth=("rzp_test_key", "secret"), base_url=fake.url)
    ...
    event = fake.advance(sub_id, "charged")      # the webhook Razorpay would send
    send_webhook(receiver_url, event, webhook_secret)
    fake.stop()

The control methods are plain Python (not HTTP) and safe to call from the test's thread while
the server runs in its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fnmatch
import socket
import threading
import time
from collections.abc import Generator
from types import TracebackType

import uvicorn

from tests.fakes.razorpay import lifecycle
from tests.fakes.razorpay.app import Call, FakeRazorpayApp, Fault, MalformedKind, Traffic
from tests.fakes.razorpay.errors import Json
from tests.fakes.razorpay.events import EventQuirks
from tests.fakes.razorpay.store import Store, snapshot

_START_TIMEOUT_S = 10.0


class _EmbeddedConfig(uvicorn.Config):
    def configure_logging(self) -> None:
        """Leave the host process's logging alone."""


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # signals belong to the host's main thread


class FakeRazorpay:
    """A running fake. `url` has no `/v1` suffix (the SDK adds it)."""

    def __init__(self, key_id: str, key_secret: str, sock: socket.socket, store: Store) -> None:
        self.key_id = key_id
        self.key_secret = key_secret
        self.url = store.base_url
        self._store = store
        self._traffic = Traffic()
        self._sock = sock
        app = FakeRazorpayApp(store, self._traffic, key_id, key_secret)
        config = _EmbeddedConfig(app, lifespan="off", log_level="warning", access_log=False)
        self._server = _EmbeddedServer(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="fake-razorpay", daemon=True)

    # -- running ---------------------------------------------------------------------------

    def _main(self) -> None:
        asyncio.run(self._serve())

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
                raise RuntimeError(f"fake Razorpay failed to start on {self.url}")
            time.sleep(0.005)

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop serving; clients still waiting (on a delay) after `grace_s` are hung up on."""
        self._server.should_exit = True
        self._thread.join(grace_s)
        if self._thread.is_alive() and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                self._loop.call_soon_threadsafe(self._hang_up)
            self._thread.join(_START_TIMEOUT_S)

    def _hang_up(self) -> None:
        for connection in list(self._server.server_state.connections):
            if connection.transport is not None:
                connection.transport.close()

    def __enter__(self) -> FakeRazorpay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- clock, identity, quirks -----------------------------------------------------------

    @property
    def now(self) -> int:
        """The fake's clock (Unix seconds): `created_at`, cycles, payments all read it."""
        with self._store.lock:
            return self._store.now

    @now.setter
    def now(self, value: int) -> None:
        with self._store.lock:
            self._store.now = int(value)

    def tick(self, seconds: int) -> int:
        """Move the clock forward; returns the new time."""
        with self._store.lock:
            self._store.now += int(seconds)
            return self._store.now

    @property
    def account_id(self) -> str:
        return self._store.account_id

    @property
    def quirks(self) -> EventQuirks:
        """The quirks every event is built with unless `advance(..., quirks=)` says otherwise."""
        return self._store.quirks

    @quirks.setter
    def quirks(self, value: EventQuirks) -> None:
        with self._store.lock:
            self._store.quirks = value

    # -- lifecycle and state ---------------------------------------------------------------

    def advance(self, sub_id: str, event: str, *, quirks: EventQuirks | None = None) -> Json:
        """Take `sub_id` through `subscription.<event>` as Razorpay would and return the
        webhook event it would send (also appended to `events`). Raises
        `lifecycle.InvalidTransition` for a step Razorpay would not take from the current
        status. Events: authenticated, activated, charged, pending, halted, cancelled,
        completed, paused, resumed, updated."""
        return lifecycle.advance(self._store, sub_id, event, quirks=quirks)

    @property
    def events(self) -> list[Json]:
        """Every event emitted so far (by `advance` and by API calls), oldest first."""
        with self._store.lock:
            return copy.deepcopy(self._store.events)

    def subscription(self, sub_id: str) -> Json:
        with self._store.lock:
            return snapshot(self._store.subscriptions[sub_id])

    def addons_of(self, sub_id: str) -> list[Json]:
        """The subscription's live (not deleted) add-ons, oldest first."""
        with self._store.lock:
            addons = self._store.addons.values()
            return [snapshot(a) for a in addons if a["subscription_id"] == sub_id]

    def invoices_of(self, sub_id: str) -> list[Json]:
        with self._store.lock:
            invoices = self._store.invoices.values()
            return [snapshot(i) for i in invoices if i["subscription_id"] == sub_id]

    def payments_of(self, sub_id: str) -> list[Json]:
        with self._store.lock:
            ids = {i["id"] for i in self._store.invoices.values() if i["subscription_id"] == sub_id}
            return [snapshot(p) for p in self._store.payments.values() if p["invoice_id"] in ids]

    def reset(self) -> None:
        """Forget all entities, events, pending faults and the call log."""
        self._store.clear()
        with self._traffic.lock:
            self._traffic.faults.clear()
            self._traffic.calls.clear()

    # -- faults and the call log -----------------------------------------------------------

    def _queue(self, n: int, fault: Fault) -> None:
        with self._traffic.lock:
            self._traffic.faults.extend([fault] * n)

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        *,
        code: str | None = None,
        html: bool = False,
        applied: bool = False,
    ) -> None:
        """The next `n` API calls answer `status` with Razorpay's error body. `code` defaults
        by status (4xx BAD_REQUEST_ERROR, 502/504 GATEWAY_ERROR, else SERVER_ERROR); `html`
        sends an HTML page instead, as a load balancer would; `applied` lets the request take
        effect first (the response is lost, the add-on exists)."""
        self._queue(n, Fault("fail", applied, status=status, code=code, html=html))

    def delay_next(self, n: int, seconds: float, *, applied: bool = True) -> None:
        """The next `n` API calls answer after `seconds`. By default the request has taken
        effect by then, so a client that timed out has still created what it asked for."""
        self._queue(n, Fault("delay", applied, seconds=seconds))

    def malformed_next(
        self, n: int = 1, kind: MalformedKind = "html", *, applied: bool = True
    ) -> None:
        """The next `n` API calls answer 200 with an HTML page, truncated JSON, or JSON of
        the wrong shape (`kind`)."""
        self._queue(n, Fault("malformed", applied, malformed=kind))

    def clear_faults(self) -> None:
        with self._traffic.lock:
            self._traffic.faults.clear()

    @property
    def calls(self) -> list[Call]:
        """Every API call received, oldest first: ``(method, path, body, query, status)``."""
        with self._traffic.lock:
            return list(self._traffic.calls)

    def calls_to(self, method: str, path_pattern: str) -> list[Call]:
        """Calls matching a method and a glob, e.g. ``("POST", "/v1/subscriptions/*/addons")``."""
        return [
            call
            for call in self.calls
            if call.method == method.upper() and fnmatch.fnmatchcase(call.path, path_pattern)
        ]


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def start_fake_razorpay(
    key_id: str,
    key_secret: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    now: int | None = None,
    strict: bool = True,
) -> FakeRazorpay:
    """Serve a fake Razorpay from a daemon thread; returns once it accepts connections.
    `port=0` picks a free port. `now` starts the clock (default: the current time; it then only
    moves when a test or a lifecycle step moves it). `strict=False` accepts unknown fields,
    which the real API rejects ("x is/are not required and should not be sent")."""
    sock = _bind(host, port)
    bound_port: int = sock.getsockname()[1]
    url_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    url_host = f"[{url_host}]" if ":" in url_host else url_host
    store = Store(
        base_url=f"http://{url_host}:{bound_port}",
        now=int(time.time()) if now is None else now,
        strict=strict,
    )
    fake = FakeRazorpay(key_id, key_secret, sock, store)
    fake._start()
    return fake
