"""The gateway's HTTP client to the Anthropic API (or the simulator), on aiohttp.

Every upstream call goes through `UpstreamClient.open`: the metered /v1/messages and
/v1/chat/completions streams, count_tokens, batches and files. It was the official SDK's
`AsyncAnthropic` until profiles showed what that cost a proxy that only forwards bytes: the
SDK's request building (pydantic options, header merging) was about a tenth of the CPU of a
streamed request, its httpx layer added three async generators per relayed chunk, and importing
it (its ~3,000 type modules) was ~75 MB of every process's memory (bench/README.md).

What the SDK did for us, this does the same way:
* the operator's key as `x-api-key`, `anthropic-version: 2023-06-01` unless the tenant sent
  one, `content-type: application/json` unless the caller sets another (a multipart upload);
* retries, for a body that can be sent again (bytes or none): a connection failure, and the
  statuses 408, 409, 429 and ≥ 500 (unless the upstream says `x-should-retry: false`; `true`
  always retries), up to `max_retries` times, waiting what `retry-after-ms` or `retry-after`
  asks (if positive and at most 60 s), else 0.5 s doubling up to 8 s, less up to 25 % jitter;
* timeouts: 10 s to connect, 10 s to get a pooled connection, 600 s between two reads.

One more retry, outside `max_retries` (which may be 0): a request whose connection the upstream
closed before any answer (`ServerDisconnectedError`, or a reset) is sent once more on a new
connection, if its body can be sent again. That is the race of a pooled keep-alive connection
that the server closes as we reuse it; pooled connections are also dropped after
`KEEPALIVE_S`, shorter than common servers' idle timeouts (uvicorn's is 5 s), to make it rare.

A refusal that is not retried (or the last one) is handed back as a response with its status:
the callers decide what an error status means. A connection that cannot be made or breaks is
`UpstreamBroken` (an OSError), a read that times out `UpstreamReadTimeout`."""

from __future__ import annotations

import asyncio
import codecs
import random
from collections.abc import AsyncIterable, AsyncIterator, Mapping

import aiohttp
from multidict import CIMultiDictProxy

API_VERSION = "2023-06-01"
INITIAL_RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 8.0
MAX_RETRY_AFTER_S = 60.0
_RETRY_STATUSES = frozenset({408, 409, 429})
KEEPALIVE_S = 3.0
_CLOSED_UNANSWERED = (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionResetError)


class UpstreamBroken(OSError):
    """The upstream could not be reached, or its connection broke."""


class UpstreamReadTimeout(UpstreamBroken, TimeoutError):
    """No bytes came from the upstream for longer than the read timeout."""


class UpstreamResponse:
    """One upstream response, its body not yet read: read it whole (`aread`) or as it arrives
    (`aiter_raw`), then `aclose` it (which returns its connection to the pool)."""

    __slots__ = ("_read_timeout_s", "_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse, read_timeout_s: float) -> None:
        self._response = response
        self._read_timeout_s = read_timeout_s
        self.status_code: int = response.status
        self.headers: CIMultiDictProxy[str] = response.headers

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (whatever is buffered, in one piece).

        The read timeout is kept by a `_ReadDeadline` instead of aiohttp's: aiohttp re-arms a
        timer on every chunk received (a timer handle made and cancelled per chunk: 6.5 % of
        the gateway's CPU on long streams, bench/README.md), this one stamps the time when a
        read starts to wait and re-arms only when its timer fires."""
        content = self._response.content
        deadline = _ReadDeadline(content, self._read_timeout_s)
        connection = self._response.connection
        if connection is not None and connection.protocol is not None:
            connection.protocol.read_timeout = None
        loop_time = asyncio.get_running_loop().time
        try:
            while True:
                deadline.waiting_since = loop_time()
                chunk = await content.readany()
                deadline.waiting_since = None
                if not chunk:
                    break
                yield chunk
        except TimeoutError:
            raise UpstreamReadTimeout("the upstream stopped sending") from None
        except aiohttp.ClientError as exc:
            raise UpstreamBroken(f"the upstream connection broke: {exc!r}") from None
        finally:
            deadline.cancel()

    async def aiter_lines(self) -> AsyncIterator[str]:
        """The body as UTF-8 text, line by line (without the line ends: LF or CRLF), of any
        length; a last line without an end is yielded too."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        pending = ""
        async for chunk in self.aiter_raw():
            pending += decoder.decode(chunk)
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line.removesuffix("\r")
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending.removesuffix("\r")

    async def aread(self) -> bytes:
        try:
            return await self._response.read()
        except TimeoutError:
            raise UpstreamReadTimeout("the upstream stopped sending") from None
        except aiohttp.ClientError as exc:
            raise UpstreamBroken(f"the upstream connection broke: {exc!r}") from None

    async def aclose(self) -> None:
        self._response.release()


class _ReadDeadline:
    """The read timeout of one body: a read that has waited `timeout_s` for bytes fails with
    `UpstreamReadTimeout`. The reader stamps `waiting_since` when it starts to wait and clears
    it when bytes come; one timer checks the stamp when it fires, and re-arms for the stamp's
    own deadline (or a full period when the reader is busy elsewhere, e.g. writing to a slow
    client). Per chunk that is two attribute stores instead of a timer."""

    __slots__ = ("_content", "_handle", "_loop", "_timeout_s", "waiting_since")

    def __init__(self, content: aiohttp.StreamReader, timeout_s: float) -> None:
        self._content = content
        self._timeout_s = timeout_s
        self._loop = asyncio.get_running_loop()
        self.waiting_since: float | None = None
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(timeout_s, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        since = self.waiting_since
        if since is not None and now - since >= self._timeout_s:
            self._handle = None
            self._content.set_exception(UpstreamReadTimeout("the upstream stopped sending"))
            return
        due = (since if since is not None else now) + self._timeout_s
        self._handle = self._loop.call_at(due, self._check)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def should_retry(status: int, headers: Mapping[str, str]) -> bool:
    told = headers.get("x-should-retry")
    if told == "true":
        return True
    if told == "false":
        return False
    return status in _RETRY_STATUSES or status >= 500


def retry_delay_s(retries_taken: int, headers: Mapping[str, str] | None) -> float:
    """How long to wait before the next attempt."""
    if headers is not None:
        for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
            try:
                asked = float(headers.get(name, "")) / scale
            except ValueError:
                continue
            if 0 < asked <= MAX_RETRY_AFTER_S:
                return asked
            break
    delay = min(INITIAL_RETRY_DELAY_S * 2.0**retries_taken, MAX_RETRY_DELAY_S)
    return delay * (1 - 0.25 * random.random())


class UpstreamClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_retries: int,
        max_connections: int = 2000,
        connect_timeout_s: float = 10.0,
        pool_timeout_s: float = 10.0,
        read_timeout_s: float = 600.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self._key = api_key
        self._max_connections = max_connections
        self._read_timeout_s = read_timeout_s
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=pool_timeout_s,  # aiohttp's `connect` includes waiting for a free connection
            sock_connect=connect_timeout_s,
            sock_read=read_timeout_s,
        )
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # created on first use: it must belong to the running loop
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=KEEPALIVE_S
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Content-Type"),
            )
        return self._session

    def headers_for(self, headers: Mapping[str, str], *, json_body: bool) -> dict[str, str]:
        out = {
            "x-api-key": self._key,
            "anthropic-version": API_VERSION,
            "accept": "application/json",
            "user-agent": "tollgate",
        }
        if json_body:
            out["content-type"] = "application/json"
        out.update(headers)
        return out

    async def open(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        content: bytes | AsyncIterable[bytes] | None = None,
    ) -> UpstreamResponse:
        """Send the request (retrying as the module says) and return the response unread.

        `headers` are sent as given, after the key and the API version; a JSON content type is
        set unless `headers` name one. A body that is a one-shot stream is sent once."""
        sent = self.headers_for(headers, json_body=isinstance(content, bytes))
        url = self.base_url + path
        replayable = content is None or isinstance(content, bytes)
        retries = self.max_retries if replayable else 0
        taken = 0
        resent = not replayable  # the one resend of a request closed unanswered
        while True:
            try:
                response = await self._client().request(
                    method, url, headers=sent, data=content, allow_redirects=False
                )
            except _CLOSED_UNANSWERED:
                if resent:
                    if taken >= retries:
                        raise UpstreamBroken(
                            "the upstream closed the connection unanswered"
                        ) from None
                    await asyncio.sleep(retry_delay_s(taken, None))
                    taken += 1
                resent = True
                continue
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if taken >= retries:
                    raise UpstreamBroken(f"the upstream could not be reached: {exc!r}") from None
                await asyncio.sleep(retry_delay_s(taken, None))
                taken += 1
                continue
            status = response.status
            if status < 400 or taken >= retries or not should_retry(status, response.headers):
                return UpstreamResponse(response, self._read_timeout_s)
            delay = retry_delay_s(taken, response.headers)
            response.release()
            await asyncio.sleep(delay)
            taken += 1

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
