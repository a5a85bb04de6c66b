"""A gateway with the admin API on, and helpers for raw HTTP (what clients' libraries refuse
to send: oversized or slow heads, chunked bodies)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.support import Gateway

ADMIN_TOKEN = "tg-admin-hardening-5e1c9d"


@pytest.fixture
def admin_gateway(gateway_factory: Callable[..., Gateway]) -> Gateway:
    return gateway_factory(admin_token=ADMIN_TOKEN)


def connect(gateway: Gateway) -> socket.socket:
    parts = urlsplit(gateway.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes or stops (a generous 60 s bound)."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
        if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
            break
    return b"".join(chunks)


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])
