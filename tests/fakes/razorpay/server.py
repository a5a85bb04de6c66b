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

import copy
import fnmatch
import time
from types import TracebackType

from api.http.threaded import ThreadedServer, embedded_config, serve_in_thread
from tests.fakes.razorpay import lifecycle
from tests.fakes.razorpay.app import Call, FakeRazorpayApp, Fault, MalformedKind, Traffic
from tests.fakes.razorpay.errors import Json
from tests.fakes.razorpay.events import EventQuirks
from tests.fakes.razorpay.store import Store, snapshot


class FakeRazorpay:
    """A running fake. `url` has no `/v1` suffix (the SDK adds it)."""

    def __init__(
        self, key_id: str, key_secret: str, store: Store, traffic: Traffic, server: ThreadedServer
    ) -> None:
        self.key_id = key_id
        self.key_secret = key_secret
        self.url = server.url
        self._store = store
        self._traffic = traffic
        self._server = server

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop serving; clients still waiting (on a delay) after `grace_s` are hung up on."""
        self._server.stop(grace_s)

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
    store = Store(base_url="", now=int(time.time()) if now is None else now, strict=strict)
    traffic = Traffic()
    app = FakeRazorpayApp(store, traffic, key_id, key_secret)
    server = serve_in_thread(embedded_config(app, http="auto"), host, port, name="fake-razorpay")
    store.base_url = server.url  # before anyone knows the URL, so before any request
    return FakeRazorpay(key_id, key_secret, store, traffic, server)
