"""The fake's HTTP face: an ASGI app serving Razorpay's `/v1` routes with HTTP Basic auth,
Razorpay's error bodies, a log of every call, and injectable faults.

Responses are serialized as Razorpay's PHP backend does (compact JSON, ``\\/``-escaped slashes).
An unknown route is 400 "The requested URL was not found on the server.", as on the real API.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import html
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send

from tests.fakes.razorpay import resources, subscriptions
from tests.fakes.razorpay.errors import (
    GATEWAY_TROUBLE,
    INVALID_KEY,
    MISSING_KEY,
    SERVER_ERROR,
    SERVER_TROUBLE,
    URL_NOT_FOUND,
    ApiError,
    Json,
    code_for_status,
    error_body,
)
from tests.fakes.razorpay.store import Store
from tests.fakes.razorpay.webhooks import dumps

log = logging.getLogger(__name__)

MalformedKind = Literal["html", "truncated", "wrong_shape"]


class Call(NamedTuple):
    """One API call as received: ``(method, path, body, query, status)``. `body` is the parsed
    JSON body (None when empty or not JSON); `status` is what the client was answered."""

    method: str
    path: str
    body: Json | None
    query: dict[str, str]
    status: int


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. `applied`: the request still takes effect (e.g. a response
    lost after the add-on was created) or, when False, never reaches the fake's state."""

    kind: Literal["fail", "delay", "malformed"]
    applied: bool
    status: int = 200
    code: str | None = None
    html: bool = False
    seconds: float = 0.0
    malformed: MalformedKind = "html"


class Traffic:
    """Faults waiting for the next calls (first in, first out: one per call) and the call log."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: deque[Fault] = deque()
        self.calls: list[Call] = []

    def next_fault(self) -> Fault | None:
        with self.lock:
            return self.faults.popleft() if self.faults else None

    def record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)


Handler = Callable[[Store, list[str], dict[str, str], Json], object]


def _route(template: str) -> re.Pattern[str]:
    return re.compile("^" + template.replace("{id}", "([^/]+)") + "$")


_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    ("POST", _route("/v1/plans"), lambda s, ids, q, b: resources.create_plan(s, b)),
    ("GET", _route("/v1/plans"), lambda s, ids, q, b: resources.list_all(s, s.plans, q)),
    ("GET", _route("/v1/plans/{id}"), lambda s, ids, q, b: resources.fetch(s, s.plans, ids[0])),
    ("POST", _route("/v1/customers"), lambda s, ids, q, b: resources.create_customer(s, b)),
    ("GET", _route("/v1/customers"), lambda s, ids, q, b: resources.list_all(s, s.customers, q)),
    (
        "GET",
        _route("/v1/customers/{id}"),
        lambda s, ids, q, b: resources.fetch(s, s.customers, ids[0]),
    ),
    (
        "POST",
        _route("/v1/subscriptions"),
        lambda s, ids, q, b: subscriptions.create_subscription(s, b),
    ),
    (
        "GET",
        _route("/v1/subscriptions"),
        lambda s, ids, q, b: resources.list_all(s, s.subscriptions, q, "plan_id", "customer_id"),
    ),
    (
        "GET",
        _route("/v1/subscriptions/{id}"),
        lambda s, ids, q, b: resources.fetch(s, s.subscriptions, ids[0]),
    ),
    (
        "PATCH",
        _route("/v1/subscriptions/{id}"),
        lambda s, ids, q, b: subscriptions.update_subscription(s, ids[0], b),
    ),
    (
        "POST",
        _route("/v1/subscriptions/{id}/cancel"),
        lambda s, ids, q, b: subscriptions.cancel_subscription(s, ids[0], b),
    ),
    (
        "POST",
        _route("/v1/subscriptions/{id}/pause"),
        lambda s, ids, q, b: subscriptions.pause_subscription(s, ids[0], b),
    ),
    (
        "POST",
        _route("/v1/subscriptions/{id}/resume"),
        lambda s, ids, q, b: subscriptions.resume_subscription(s, ids[0], b),
    ),
    (
        "GET",
        _route("/v1/subscriptions/{id}/retrieve_scheduled_changes"),
        lambda s, ids, q, b: subscriptions.scheduled_changes(s, ids[0]),
    ),
    (
        "POST",
        _route("/v1/subscriptions/{id}/cancel_scheduled_changes"),
        lambda s, ids, q, b: subscriptions.cancel_scheduled_changes(s, ids[0]),
    ),
    (
        "POST",
        _route("/v1/subscriptions/{id}/addons"),
        lambda s, ids, q, b: resources.create_addon(s, ids[0], b),
    ),
    (
        "GET",
        _route("/v1/addons"),
        lambda s, ids, q, b: resources.list_all(s, s.addons, q, "subscription_id", "invoice_id"),
    ),
    ("GET", _route("/v1/addons/{id}"), lambda s, ids, q, b: resources.fetch(s, s.addons, ids[0])),
    ("DELETE", _route("/v1/addons/{id}"), lambda s, ids, q, b: resources.delete_addon(s, ids[0])),
    (
        "GET",
        _route("/v1/invoices"),
        lambda s, ids, q, b: resources.list_all(
            s, s.invoices, q, "subscription_id", "customer_id", "payment_id", "type", "receipt"
        ),
    ),
    (
        "GET",
        _route("/v1/invoices/{id}"),
        lambda s, ids, q, b: resources.fetch(s, s.invoices, ids[0]),
    ),
]


def _json_response(status: int, payload: object) -> Response:
    return Response(dumps(payload), status, media_type="application/json")


def _parse_body(raw: bytes) -> Json:
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ApiError("The request body is not valid JSON.") from None
    if parsed == []:  # PHP's empty array
        return {}
    if not isinstance(parsed, dict):
        raise ApiError("The request body must be a JSON object.")
    return parsed


def _loggable(raw: bytes) -> Json | None:
    try:
        parsed = json.loads(raw) if raw.strip() else None
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _fault_response(fault: Fault, payload: object) -> Response:
    if fault.kind == "malformed":
        if fault.malformed == "html":
            return HTMLResponse("<html><body><h1>Bad gateway</h1></body></html>", 200)
        if fault.malformed == "truncated":
            body = dumps(payload)
            return Response(body[: len(body) // 2], 200, media_type="application/json")
        return _json_response(200, {"unexpected": "shape"})
    if fault.html:
        return HTMLResponse(f"<html><body><h1>{fault.status}</h1></body></html>", fault.status)
    code = fault.code or code_for_status(fault.status)
    description = SERVER_TROUBLE if fault.status >= 500 else "The request could not be served."
    if code == "GATEWAY_ERROR":
        description = GATEWAY_TROUBLE
    return _json_response(fault.status, error_body(code, description))


class FakeRazorpayApp:
    """ASGI app over a `Store`, authenticating with one key id/secret."""

    def __init__(self, store: Store, traffic: Traffic, key_id: str, key_secret: str) -> None:
        self.store = store
        self.traffic = traffic
        self._key = (key_id.encode(), key_secret.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if request.method == "GET" and request.url.path.startswith("/pay/"):
            response = self._checkout_page(request.url.path.removeprefix("/pay/"))
        else:
            response = await self._api(request)
        await response(scope, receive, send)

    async def _api(self, request: Request) -> Response:
        raw = await request.body()
        query = dict(request.query_params)
        fault = self.traffic.next_fault()
        if fault is not None and fault.kind == "delay" and not fault.applied:
            await asyncio.sleep(fault.seconds)
        if fault is not None and fault.kind != "delay" and not fault.applied:
            response = _fault_response(fault, {})
        else:
            status, payload = self._handle(request, query, raw)
            response = _json_response(status, payload)
            if fault is not None and fault.kind != "delay":
                response = _fault_response(fault, payload)
        call = Call(request.method, request.url.path, _loggable(raw), query, response.status_code)
        self.traffic.record(call)
        if fault is not None and fault.kind == "delay" and fault.applied:
            await asyncio.sleep(fault.seconds)
        return response

    def _handle(self, request: Request, query: dict[str, str], raw: bytes) -> tuple[int, object]:
        try:
            self._authenticate(request.headers.get("authorization"))
            body = _parse_body(raw)
            for method, pattern, handler in _ROUTES:
                match = pattern.match(request.url.path)
                if match is not None and method == request.method:
                    return 200, handler(self.store, list(match.groups()), query, body)
            raise ApiError(URL_NOT_FOUND)
        except ApiError as exc:
            return exc.status, exc.body()
        except Exception:
            log.exception("fake razorpay failed on %s %s", request.method, request.url.path)
            return 500, error_body(SERVER_ERROR, SERVER_TROUBLE)

    def _authenticate(self, header: str | None) -> None:
        if not header or not header.lower().startswith("basic "):
            raise ApiError(MISSING_KEY, status=401)
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except binascii.Error:
            raise ApiError(INVALID_KEY, status=401) from None
        key_id, _, key_secret = decoded.partition(b":")
        if not (
            hmac.compare_digest(key_id, self._key[0])
            and hmac.compare_digest(key_secret, self._key[1])
        ):
            raise ApiError(INVALID_KEY, status=401)

    def _checkout_page(self, entity_id: str) -> Response:
        with self.store.lock:
            sub = self.store.subscriptions.get(entity_id) or self.store.invoices.get(entity_id)
            status = sub["status"] if sub else "unknown"
        title = html.escape(f"{entity_id}: {status}")
        return HTMLResponse(
            f"<html><body><h1>Fake Razorpay checkout</h1><p>{title}</p></body></html>"
        )
