"""Limits before anything is parsed (issue 10, defect 3): body size by content-length and by
counting a chunked body, on every route (admin ones included, before authentication); the
admin token checked before the admin body is read; the size of the request head and the time
the head and the body may take."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx

from tests.http.conftest import ADMIN_TOKEN, connect, read_response, status_of
from tests.support import Gateway, walk_routes

MIB = 1024 * 1024


def _chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b" " * min(size, total - sent)
        sent += len(chunk)
        yield chunk


def _assert_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type


async def test_an_oversized_admin_body_is_refused_by_its_declared_length(
    admin_gateway: Gateway,
) -> None:
    body = b'{"name": "' + b"x" * (9 * MIB) + b'"}'
    async with httpx.AsyncClient(base_url=admin_gateway.url, timeout=60) as client:
        response = await client.post(
            "/admin/tenants", content=body, headers={"content-type": "application/json"}
        )
    _assert_error(response, 413, "request_too_large")


async def test_a_chunked_body_is_counted_and_refused_past_the_limit(
    admin_gateway: Gateway,
) -> None:
    async def body() -> AsyncIterator[bytes]:
        for chunk in _chunks(12 * MIB):
            yield chunk

    async with httpx.AsyncClient(base_url=admin_gateway.url, timeout=60) as client:
        response = await client.post(
            "/admin/tenants",
            content=body(),
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert "content-length" not in response.request.headers  # it really was chunked
    _assert_error(response, 413, "request_too_large")


async def test_the_admin_token_is_checked_before_the_body_is_read(
    admin_gateway: Gateway,
) -> None:
    async with httpx.AsyncClient(base_url=admin_gateway.url) as client:
        # Not JSON at all: parsing it first would answer 400.
        response = await client.post("/admin/tenants", content=b"{not json")
        _assert_error(response, 401, "authentication_error")
        authorized = await client.post(
            "/admin/tenants",
            content=b"{not json",
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    _assert_error(authorized, 400, "invalid_request_error")


def test_a_request_head_over_the_limit_gets_431(
    gateway_factory: Callable[..., Gateway],
) -> None:
    gateway = gateway_factory(max_header_bytes=16 * 1024)
    with connect(gateway) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        try:
            for _ in range(1000):  # up to ~1 MB of headers; the server stops us far earlier
                sock.sendall(b"x-flood: " + b"a" * 1000 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_response(sock)
    assert status_of(response) == 431


def test_a_request_head_under_the_limit_is_served(
    gateway_factory: Callable[..., Gateway],
) -> None:
    gateway = gateway_factory(max_header_bytes=16 * 1024)
    headers = {f"x-h{i}": "v" * 100 for i in range(50)}  # ~5.5 KB
    assert httpx.get(gateway.url + "/healthz", headers=headers).status_code == 200


def test_a_slow_request_head_is_cut_off_with_408(
    gateway_factory: Callable[..., Gateway],
) -> None:
    gateway = gateway_factory(header_timeout_s=1)
    with connect(gateway) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
        started = time.monotonic()
        response = read_response(sock)  # returns once the server answers and closes
    assert status_of(response) == 408
    assert time.monotonic() - started < 60  # the read's own bound; the server was first


def test_a_slow_request_body_is_cut_off_with_408(
    gateway_factory: Callable[..., Gateway],
) -> None:
    gateway = gateway_factory(body_timeout_s=1, admin_token=ADMIN_TOKEN)
    with connect(gateway) as sock:
        sock.sendall(
            b"POST /admin/tenants HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"authorization: Bearer " + ADMIN_TOKEN.encode() + b"\r\n"
            b'content-length: 100\r\n\r\n{"name": '
        )
        response = read_response(sock)
    assert status_of(response) == 408
    assert b'"timeout_error"' in response


async def test_no_admin_write_route_reads_its_body_before_the_token(
    admin_gateway: Gateway,
) -> None:
    """Every admin route that takes a body answers an unauthenticated, unparseable one with
    401: the token is checked first, whatever the route (new routes included)."""
    app = admin_gateway.server.config.app
    writes = sorted(
        (method, path)
        for method, path in walk_routes(app.routes)
        if path.startswith("/admin") and method in {"POST", "PUT", "PATCH"}
    )
    assert len(writes) >= 10, writes
    fill = "3f1d2c4e-0000-4000-8000-000000000001"
    async with httpx.AsyncClient(base_url=admin_gateway.url) as client:
        for method, path in writes:
            url = "/" + "/".join(
                fill if p.startswith("{") else p for p in path.strip("/").split("/")
            )
            response = await client.request(method, url, content=b"{not json")
            assert response.status_code == 401, (method, path, response.text)
