"""Forwarding a tenant's call to an upstream resource (batches, files) through the upstream
client (api/upstream_client.py), getting the raw response back unread, so its body can be
relayed as it arrives.

The client adds the operator's key and retries what is safe to retry before the body starts; a
request whose body is a one-shot stream (an upload) is sent once, as is, with its own
content-type and boundary."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass

from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from api.errors import BadGateway
from api.http.forwarding import relayed_error_headers
from api.upstream_client import UpstreamBroken, UpstreamClient, UpstreamResponse


@dataclass(frozen=True)
class Refused:
    """The upstream answered with an error status: relay it as is."""

    status: int
    body: bytes
    headers: dict[str, str]

    def response(self) -> Response:
        return Response(self.body, self.status, self.headers)


def relay_stream(opened: UpstreamResponse, names: tuple[str, ...]) -> StreamingResponse:
    """The upstream's body, relayed as it arrives (never held whole), with the headers `names`;
    the upstream response is closed when the relay ends."""
    relayed = {k: opened.headers[k] for k in names if k in opened.headers}
    return StreamingResponse(
        opened.aiter_raw(), opened.status_code, relayed, background=BackgroundTask(opened.aclose)
    )


async def open_upstream(
    client: UpstreamClient,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str],
    content: bytes | AsyncIterable[bytes] | None = None,
) -> UpstreamResponse | Refused:
    """The upstream's response, unread (the caller closes it), or its refusal.

    Raises BadGateway when the upstream cannot be reached."""
    try:
        response = await client.open(method, path, headers=headers, content=content)
        if response.status_code >= 400:
            try:
                body = await response.aread()
            finally:
                await response.aclose()
            return Refused(response.status_code, body, relayed_error_headers(response.headers))
    except UpstreamBroken:
        raise BadGateway("the upstream could not be reached") from None
    return response


async def read_json(
    client: UpstreamClient,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str],
    content: bytes | AsyncIterable[bytes] | None = None,
) -> dict[str, object] | Refused:
    """A small JSON call (a batch or file object)."""
    opened = await open_upstream(client, method, path, headers=headers, content=content)
    if isinstance(opened, Refused):
        return opened
    try:
        raw = await opened.aread()
    except OSError:
        raise BadGateway("the upstream connection broke") from None
    finally:
        await opened.aclose()
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadGateway("the upstream sent an unreadable answer") from None
    if not isinstance(body, dict):
        raise BadGateway("the upstream sent an unexpected answer")
    return body
