"""Forwarding a tenant's call to an upstream resource (batches, files) through the official SDK,
getting the raw response back unread, so its body can be relayed as it arrives.

The SDK adds the operator's key and retries what is safe to retry before the body starts
(pass `retry=False` when the request body is a one-shot stream)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass

import httpx2
from anthropic import APIConnectionError, APIStatusError, AsyncAnthropic
from anthropic._constants import RAW_RESPONSE_HEADER
from anthropic._models import FinalRequestOptions

from api.errors import BadGateway
from api.http.forwarding import relayed_error_headers


@dataclass(frozen=True)
class Refused:
    """The upstream answered with an error status: relay it as is."""

    status: int
    body: bytes
    headers: dict[str, str]


async def open_upstream(
    client: AsyncAnthropic,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str],
    query: Mapping[str, str] | None = None,
    content: bytes | AsyncIterable[bytes] | None = None,
    retry: bool = True,
) -> httpx2.Response | Refused:
    """The upstream's response, unread (the caller closes it), or its refusal.

    Raises BadGateway when the upstream cannot be reached."""
    if not retry:
        return await _send_once(client, method, path, headers=headers, content=content)
    options = FinalRequestOptions.construct(
        method=method.lower(),
        url=path,
        headers={**headers, RAW_RESPONSE_HEADER: "stream"},
        params=dict(query or {}),
        content=content,
    )
    try:
        response: httpx2.Response = await client.request(httpx2.Response, options)
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
    *,
    headers: Mapping[str, str],
    content: bytes | AsyncIterable[bytes] | None,
) -> httpx2.Response | Refused:
    """One attempt, with the body as given: a streamed multipart upload keeps its own
    content-type and boundary (the SDK's request builder would replace them)."""
    merged = httpx2.Headers({k: v for k, v in client.default_headers.items() if isinstance(v, str)})
    merged.update(dict(headers))
    url = str(client.base_url).rstrip("/") + path
    http = client._client
    try:
        request = http.build_request(method, url, headers=merged, content=content)
        response = await http.send(request, stream=True)
    except (httpx2.HTTPError, OSError):
        raise BadGateway("the upstream could not be reached") from None
    if response.status_code >= 400:
        body = await response.aread()
        await response.aclose()
        return Refused(response.status_code, body, relayed_error_headers(response.headers))
    return response


async def read_json(
    client: AsyncAnthropic,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str],
    query: Mapping[str, str] | None = None,
    content: bytes | AsyncIterable[bytes] | None = None,
) -> dict[str, object] | Refused:
    """A small JSON call (a batch or file object); a streamed body is never retried."""
    replayable = content is None or isinstance(content, bytes)
    opened = await open_upstream(
        client, method, path, headers=headers, query=query, content=content, retry=replayable
    )
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
