"""Sending a request upstream (api/upstream_client.py) and getting its raw bytes back.

The tenant's JSON body is forwarded as the bytes it arrived as (no re-encoding); the client adds
the operator's key, retries what is safe to retry before the body starts (connection errors,
408/409/429/5xx/529), and hands back the unread response so the stream can be relayed as is.

How an upstream failure reaches the client is defined once, by the exceptions below: a refusal
is relayed as is, a first byte that never came is 504, an unreachable upstream 502; inside a
metered request each also says how the ledger row settles."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from api.errors import BadGateway, TollgateError, UpstreamTimeout
from api.http.forwarding import relayed_error_headers
from api.ledger.metered import EndedBeforeStream
from api.upstream_client import UpstreamBroken, UpstreamClient, UpstreamResponse


@dataclass
class UpstreamStream:
    response: UpstreamResponse
    chunks: AsyncIterator[bytes]
    first_chunk: bytes


class UpstreamRefused(EndedBeforeStream, TollgateError):
    """The upstream answered with an error status before any body: relayed as is (status,
    body and its headers), and the row settles as `upstream_error` with that status."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str], error_type: str | None):
        super().__init__(f"the upstream refused the request ({status})", headers=headers)
        self.status = self.http_status = status
        self.error_type = error_type or "api_error"
        self.ledger_error_type = error_type
        self.upstream_request_id = headers.get("request-id")
        self.upstream_body = body

    def body(self, request_id: str) -> bytes:
        return self.upstream_body


class UpstreamUnreachable(EndedBeforeStream, BadGateway):
    """502; the row settles as `upstream_error` / `api_connection_error`."""

    ledger_error_type = "api_connection_error"

    def __init__(self, detail: str) -> None:
        super().__init__("the upstream could not be reached")
        self.detail = detail


class FirstByteTimeout(EndedBeforeStream, UpstreamTimeout):
    """504; the row settles as `timeout`."""

    ledger_status, ledger_error_type = "timeout", "timeout_error"

    def __init__(self) -> None:
        super().__init__("the upstream did not answer in time")


def _error_type(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(err, dict) and isinstance(err.get("type"), str):
        return str(err["type"])
    return None


async def _refused(response: UpstreamResponse) -> UpstreamRefused:
    try:
        body = await response.aread()
    finally:
        await response.aclose()
    headers = relayed_error_headers(response.headers)
    return UpstreamRefused(response.status_code, body, headers, _error_type(body))


async def open_stream(
    client: UpstreamClient,
    path: str,
    body: bytes,
    headers: dict[str, str],
    first_byte_timeout_s: float,
) -> UpstreamStream:
    """Send the request and wait for the first body byte, all within the timeout.

    Raises UpstreamRefused, FirstByteTimeout (the upstream request is cancelled and its
    connection closed) or UpstreamUnreachable."""
    response: UpstreamResponse | None = None
    try:
        async with asyncio.timeout(first_byte_timeout_s):
            response = await client.open("POST", path, headers=headers, content=body)
            if response.status_code >= 400:
                raise await _refused(response)
            chunks = response.aiter_raw()
            first = await anext(chunks, b"")
    except TimeoutError:
        if response is not None:
            await response.aclose()
        raise FirstByteTimeout from None
    except UpstreamBroken as exc:
        if response is not None:
            await response.aclose()
        raise UpstreamUnreachable(str(exc)) from None
    return UpstreamStream(response, chunks, first)


async def read_whole(
    client: UpstreamClient, path: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> tuple[UpstreamResponse, bytes]:
    """A non-streaming call: the whole body, within `timeout_s`."""
    response: UpstreamResponse | None = None
    try:
        async with asyncio.timeout(timeout_s):
            response = await client.open("POST", path, headers=headers, content=body)
            if response.status_code >= 400:
                raise await _refused(response)
            content = await response.aread()
    except TimeoutError:
        raise FirstByteTimeout from None
    except UpstreamBroken as exc:
        raise UpstreamUnreachable(str(exc)) from None
    finally:
        if response is not None:
            await response.aclose()
    return response, content
