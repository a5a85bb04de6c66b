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

from api.errors import BadGateway, RequestTooLarge

PASS_THROUGH = ("anthropic-beta", "anthropic-version")
SIM_PREFIX = "x-sim-"
_RELAYED = ("request-id", "retry-after", "content-type", "x-should-retry")


@dataclass(frozen=True)
class Refused:
    """The upstream answered with an error status: relay it as is."""

    status: int
    body: bytes
    headers: dict[str, str]


def forwarded_headers(incoming: Mapping[str, str], *, simulated: bool) -> dict[str, str]:
    """`anthropic-beta`, `anthropic-version`, and the simulator's `x-sim-*` knobs when the
    upstream is the simulator."""
    out = {name: incoming[name] for name in PASS_THROUGH if name in incoming}
    if simulated:
        out.update({k: v for k, v in incoming.items() if k.startswith(SIM_PREFIX)})
    return out


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
        relayed = {k: exc.response.headers[k] for k in _RELAYED if k in exc.response.headers}
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
        relayed = {k: response.headers[k] for k in _RELAYED if k in response.headers}
        return Refused(response.status_code, body, relayed)
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


async def read_limited(chunks: AsyncIterable[bytes], declared: str | None, limit: int) -> bytes:
    """A whole request body, refusing anything over `limit` bytes without reading all of it."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"request body is larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(f"request body is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
