"""Forwarding a tenant's call to an upstream resource (batches, files) through the official SDK,
getting the raw response back unread, so its body can be relayed as it arrives.

The SDK adds the operator's key and retries what is safe to retry before the body starts; a
request whose body is a one-shot stream (an upload) is sent once, as is."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass

import httpx2
from anthropic import APIConnectionError, APIStatusError, AsyncAnthropic
from anthropic._constants import RAW_RESPONSE_HEADER
from anthropic._models import FinalRequestOptions
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from api.errors import BadGateway
from api.http.forwarding import relayed_error_headers


@dataclass(frozen=True)
class Refused:
    """The upstream answered with an error status: relay it as is."""

    status: int
    body: bytes
    headers: dict[str, str]

    def response(self) -> Response:
        return Response(self.body, self.status, self.headers)


def relay_stream(opened: httpx2.Response, names: tuple[str, ...]) -> StreamingResponse:
    """The upstream's body, relayed as it arrives (never held whole), with the headers `names`;
    the upstream response is closed when the relay ends."""
    relayed = {k: opened.headers[k] for k in names if k in opened.headers}
    return StreamingResponse(
        opened.aiter_raw(), opened.status_code, relayed, background=BackgroundTask(opened.aclose)
    )


async def open_upstream(
    client: AsyncAnthropic,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str],
    content: bytes | AsyncIterable[bytes] | None = None,
) -> httpx2.Response | Refused:
    """The upstream's response, unread (the caller closes it), or its refusal.

    Raises BadGateway when the upstream cannot be reached."""
    try:
        if content is None or isinstance(content, bytes):  # replayable: the SDK may retry
            options = FinalRequestOptions.construct(
                method=method.lower(),
                url=path,
                headers={**headers, RAW_RESPONSE_HEADER: "stream"},
                content=content,
            )
            response: httpx2.Response = await client.request(httpx2.Response, options)
        else:
            response = await _send_once(client, method, path, headers, content)
        if response.status_code >= 400:  # only from _send_once (the SDK raises instead)
            body = await response.aread()
            await response.aclose()
            return Refused(response.status_code, body, relayed_error_headers(response.headers))
    except APIStatusError as exc:
        relayed = relayed_error_headers(exc.response.headers)
        return Refused(exc.status_code, exc.response.content, relayed)
    except (APIConnectionError, httpx2.HTTPError, OSError):
        raise BadGateway("the upstream could not be reached") from None
    return response


async def _send_once(
    client: AsyncAnthropic,
    method: str,
    path: str,
    headers: Mapping[str, str],
    content: bytes | AsyncIterable[bytes] | None,
) -> httpx2.Response:
    """One attempt, with the body as given: a streamed multipart upload keeps its own
    content-type and boundary (the SDK's request builder would replace them)."""
    merged = httpx2.Headers({k: v for k, v in client.default_headers.items() if isinstance(v, str)})
    merged.update(dict(headers))
    url = str(client.base_url).rstrip("/") + path
    request = client._client.build_request(method, url, headers=merged, content=content)
    return await client._client.send(request, stream=True)


async def read_json(
    client: AsyncAnthropic,
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
    except (httpx2.HTTPError, OSError):
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
