"""The upstream client (api/upstream_client.py) against a small scripted HTTP server: what it
sends, what it retries and how often, and how it reads bodies."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from api.upstream_client import (
    API_VERSION,
    UpstreamBroken,
    UpstreamClient,
    UpstreamReadTimeout,
    retry_delay_s,
    should_retry,
)

Reply = Callable[[web.Request], web.StreamResponse]


@dataclass
class Scripted:
    """Answers the n-th request with replies[n] (the last one repeats); keeps what it got."""

    replies: list[Reply]
    seen: list[tuple[str, Mapping[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.path, request.headers.copy(), await request.read()))
        reply = self.replies[min(len(self.seen), len(self.replies)) - 1]
        return reply(request)


Serve = Callable[[list[Reply]], Awaitable[Scripted]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start scripted servers on free ports; all are stopped after the test."""
    runners: list[web.AppRunner] = []

    async def start(replies: list[Reply]) -> Scripted:
        script = Scripted(replies)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", script.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        script.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return script

    yield start
    for runner in runners:
        await runner.cleanup()


def status(code: int, **headers: str) -> Reply:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"busy"}}'
    return lambda request: web.Response(body=body, status=code, headers=headers)


def ok(body: bytes = b'{"ok":true}') -> Reply:
    return lambda request: web.Response(body=body, content_type="application/json")


async def test_sends_the_key_the_api_version_and_the_body_as_given(serve: Serve) -> None:
    upstream = await serve([ok()])
    client = UpstreamClient(upstream.url, "sk-operator", max_retries=0)
    try:
        response = await client.open(
            "POST", "/v1/messages", headers={"anthropic-beta": "b1"}, content=b'{"a":1}'
        )
        assert (response.status_code, await response.aread()) == (200, b'{"ok":true}')
        await response.aclose()
        [(path, headers, body)] = upstream.seen
        assert (path, body) == ("/v1/messages", b'{"a":1}')
        assert headers["x-api-key"] == "sk-operator"
        assert headers["anthropic-version"] == API_VERSION
        assert headers["anthropic-beta"] == "b1"
        assert headers["content-type"] == "application/json"
        # the tenant's own API version wins
        response = await client.open(
            "POST", "/v1/messages", headers={"anthropic-version": "2099-01-01"}, content=b"{}"
        )
        await response.aclose()
        assert upstream.seen[1][1]["anthropic-version"] == "2099-01-01"
    finally:
        await client.close()


async def test_retries_an_overloaded_answer_then_returns_the_success(serve: Serve) -> None:
    upstream = await serve([status(529, **{"retry-after-ms": "10"}), status(500), ok()])
    client = UpstreamClient(upstream.url, "k", max_retries=2)
    try:
        response = await client.open("POST", "/v1/messages", headers={}, content=b"{}")
        assert response.status_code == 200
        await response.aclose()
        assert len(upstream.seen) == 3
        assert all(body == b"{}" for _, _, body in upstream.seen)  # the same body each time
    finally:
        await client.close()


async def test_the_last_refusal_is_returned_once_the_retries_are_spent(serve: Serve) -> None:
    upstream = await serve([status(429, **{"retry-after": "0.01"})])
    client = UpstreamClient(upstream.url, "k", max_retries=1)
    try:
        response = await client.open("POST", "/v1/messages", headers={}, content=b"{}")
        assert response.status_code == 429
        assert b"overloaded_error" in await response.aread()
        await response.aclose()
        assert len(upstream.seen) == 2
    finally:
        await client.close()


async def test_no_retry_when_told_not_to_or_for_a_client_error(serve: Serve) -> None:
    upstream = await serve([status(529, **{"x-should-retry": "false"}), status(400)])
    client = UpstreamClient(upstream.url, "k", max_retries=3)
    try:
        first = await client.open("POST", "/v1/messages", headers={}, content=b"{}")
        assert first.status_code == 529
        await first.aclose()
        second = await client.open("POST", "/v1/messages", headers={}, content=b"{}")
        assert second.status_code == 400
        await second.aclose()
        assert len(upstream.seen) == 2
    finally:
        await client.close()


async def test_a_streamed_upload_is_sent_once(serve: Serve) -> None:
    upstream = await serve([status(503)])
    client = UpstreamClient(upstream.url, "k", max_retries=3)

    async def parts() -> AsyncIterator[bytes]:
        yield b"--b\r\n"
        yield b"data\r\n--b--\r\n"

    try:
        headers = {"content-type": "multipart/form-data; boundary=b"}
        response = await client.open("POST", "/v1/files", headers=headers, content=parts())
        assert response.status_code == 503
        await response.aclose()
        [(_, seen_headers, body)] = upstream.seen
        assert body == b"--b\r\ndata\r\n--b--\r\n"
        assert seen_headers["content-type"] == "multipart/form-data; boundary=b"
    finally:
        await client.close()


async def test_an_unreachable_upstream_is_upstream_broken_after_its_retries() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = UpstreamClient(f"http://127.0.0.1:{port}", "k", max_retries=1)
    try:
        with pytest.raises(UpstreamBroken):
            await client.open("POST", "/v1/messages", headers={}, content=b"{}")
    finally:
        await client.close()


async def test_lines_of_any_length_across_chunks(serve: Serve) -> None:
    long_line = b'{"x":"' + b"y" * 300_000 + b'"}'

    def jsonl(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b'{"a":1}\r\n' + long_line + b"\n\n" + b'{"\xc3\xa9":2}')

    upstream = await serve([jsonl])
    client = UpstreamClient(upstream.url, "k", max_retries=0)
    try:
        response = await client.open("GET", "/results", headers={})
        lines = [line async for line in response.aiter_lines()]
        await response.aclose()
        assert lines == ['{"a":1}', long_line.decode(), "", '{"é":2}']
    finally:
        await client.close()


def test_retry_policy() -> None:
    assert should_retry(529, {}) and should_retry(408, {}) and should_retry(409, {})
    assert should_retry(429, {}) and should_retry(500, {})
    assert not should_retry(400, {}) and not should_retry(404, {})
    assert not should_retry(503, {"x-should-retry": "false"})
    assert should_retry(400, {"x-should-retry": "true"})
    assert retry_delay_s(0, {"retry-after-ms": "250"}) == 0.25
    assert retry_delay_s(0, {"retry-after": "2"}) == 2.0
    # an absurd or missing wait falls back to the backoff: 0.5 s doubling, capped at 8 s,
    # less up to 25 % jitter
    assert 0.375 <= retry_delay_s(0, {"retry-after": "86400"}) <= 0.5
    assert 0.75 <= retry_delay_s(1, None) <= 1.0
    assert 6.0 <= retry_delay_s(10, {}) <= 8.0


async def _drop_second_request_per_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log: list[str]
) -> None:
    """Answer a connection's first request (keeping it alive), then close the connection on the
    second one without a word: a server's idle timeout firing as the client reuses the
    connection."""
    answered = 0
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode().split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            log.append(body.decode())
            if answered:
                return  # closed unanswered
            answered += 1
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def test_a_request_on_a_connection_closed_unanswered_is_sent_once_more() -> None:
    """Even with no retries configured, a pooled connection that the server closed as it was
    reused costs the caller nothing: the request goes once more on a new connection."""
    log: list[str] = []
    server = await asyncio.start_server(
        lambda r, w: _drop_second_request_per_connection(r, w, log), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    client = UpstreamClient(f"http://127.0.0.1:{port}", "sk-test", max_retries=0)
    try:
        first = await client.open("POST", "/v1/messages", headers={}, content=b'{"n": 1}')
        assert first.status_code == 200 and await first.aread() == b"{}"
        await first.aclose()  # the connection goes back to the pool, alive
        second = await client.open("POST", "/v1/messages", headers={}, content=b'{"n": 2}')
        assert second.status_code == 200 and await second.aread() == b"{}"
        await second.aclose()
        # The second request reached the server twice: dropped on the pooled connection,
        # answered on a new one.
        assert log == ['{"n": 1}', '{"n": 2}', '{"n": 2}']
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def test_a_second_unanswered_close_is_upstream_broken_without_retries() -> None:
    """The resend happens once: a server that closes every request unanswered is an upstream
    that cannot be reached (502 at the gateway), after the configured retries (here none)."""
    attempts: list[int] = []

    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
        attempts.append(1)
        writer.close()

    server = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = UpstreamClient(f"http://127.0.0.1:{port}", "sk-test", max_retries=0)
    try:
        with pytest.raises(UpstreamBroken):
            await client.open("POST", "/v1/messages", headers={}, content=b"{}")
        assert len(attempts) == 2
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def _stalling_upstream(release: asyncio.Event) -> AsyncIterator[str]:
    """A server that sends its headers and one chunk, then nothing until `release`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: ping\ndata: {}\n\n")
        await release.wait()
        return response

    app = web.Application()
    app.router.add_post("/v1/messages", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        release.set()
        await runner.cleanup()


async def test_a_body_that_stops_arriving_fails_with_the_read_timeout() -> None:
    release = asyncio.Event()
    async with contextlib.asynccontextmanager(_stalling_upstream)(release) as url:
        client = UpstreamClient(url, "sk-operator", max_retries=0, read_timeout_s=0.2)
        try:
            response = await client.open("POST", "/v1/messages", headers={}, content=b"{}")
            chunks = response.aiter_raw()
            assert await anext(chunks) == b"event: ping\ndata: {}\n\n"
            with pytest.raises(UpstreamReadTimeout):
                await anext(chunks)
            await response.aclose()
        finally:
            await client.close()
