"""One metered upstream stream: a pump task reads the upstream stream, meters every chunk and
hands it to a sink — the ASGI `send` of /v1/messages directly, or a small queue that /chat's
encoder reads — and settles the request when the stream ends (or fails, or the client leaves).
The pump is spawned by the request's owner (`MeteredRequest.spawn`) the moment the stream is
opened, and waits for its sink; it owns the upstream response, so a client hang-up or a
cancelled handler can never skip the ledger write.

Client hang-up: `drain` keeps reading the upstream to its end so the exact usage is billed;
`close` closes the upstream at once and bills what was seen (output from the last usage, or the
number of content deltas if that is more and the final usage never came)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

from api.ledger.functions import Settlement
from api.ledger.metered import CallContext, MeteredRequest
from api.metering.meter import UsageMeter
from api.proxy.upstream import UpstreamStream
from api.upstream_client import UpstreamReadTimeout

log = logging.getLogger(__name__)

Sink = Callable[[bytes], Awaitable[None]]
_END = b""
_QUEUE_CHUNKS = 64  # backpressure: a slow client slows the upstream read, not our memory
_DELTA_EVENT = b"event: content_block_delta"
# A response is always started right after its handler returns; if none comes for this long,
# nobody is listening: the pump closes the upstream and bills what it saw.
_SINK_WAIT_S = 60.0


def outcome(meter: UsageMeter, *, client_gone: bool, transport_error: str | None) -> str:
    """The ledger status of a stream that got past its first byte."""
    if meter.error_type is not None:
        return "upstream_error"
    if client_gone:
        return "client_disconnected"
    if transport_error == "timeout":
        return "timeout"
    return "ok" if meter.complete else "incomplete"


async def _discard(chunk: bytes) -> None:
    return None


class MeteredStream:
    def __init__(
        self, metered: MeteredRequest, opened: UpstreamStream, *, drain_on_disconnect: bool
    ) -> None:
        self.metered = metered
        self.response = opened.response
        self.meter = UsageMeter()
        self.first_chunk_mono = time.monotonic()
        self.client_gone = False
        self._chunks = opened.chunks
        self._first = opened.first_chunk
        self._drain = drain_on_disconnect
        self._transport_error: str | None = None
        self._deltas = 0
        self._queue: asyncio.Queue[bytes] | None = None
        # Dropped when the pump ends: the sink (the response's send) refers back to this
        # stream, and a cycle would leave the request's whole object graph to the cyclic
        # garbage collector instead of freeing it when the request ends (bench/README.md).
        self._sink: asyncio.Future[Sink] | None = asyncio.get_running_loop().create_future()
        self._pump = metered.spawn(self._run())

    @property
    def ctx(self) -> CallContext:
        return self.metered.ctx

    @property
    def upstream_request_id(self) -> str | None:
        return self.response.headers.get("request-id")

    def start(self, sink: Sink) -> None:
        """Every chunk goes to `sink` until the client is gone."""
        if self._sink is not None and not self._sink.done():
            self._sink.set_result(sink)

    async def relay(self) -> AsyncIterator[bytes]:
        """Pump into a queue and yield the upstream bytes as they arrive."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(_QUEUE_CHUNKS)
        self._queue = queue
        self.start(queue.put)
        while (chunk := await queue.get()) is not _END:
            yield chunk

    def disconnect(self) -> None:
        """The client went away: drain or close, as configured. The pump still settles."""
        if self.client_gone:
            return
        self.client_gone = True
        if self._queue is not None:
            while not self._queue.empty():  # unblock a pump waiting on a full queue
                self._queue.get_nowait()
            self._queue.put_nowait(_END)
        if self._sink is not None and not self._sink.done():
            self._sink.set_result(_discard)  # gone before the response started
        if not self._drain:
            self._pump.cancel()

    async def finished(self) -> Settlement | None:
        """Wait until the row is settled."""
        await asyncio.wait({self._pump})
        return self.metered.settlement

    async def _feed(self, sink: Sink, chunk: bytes) -> None:
        self.meter.observe(chunk)
        self._deltas += chunk.count(_DELTA_EVENT)
        if not self.client_gone:
            await sink(chunk)

    async def _run(self) -> None:
        assert self._sink is not None
        try:
            try:
                async with asyncio.timeout(_SINK_WAIT_S):
                    sink = await self._sink
            except TimeoutError:
                self.client_gone = True  # nobody is listening
                return
            await self._feed(sink, self._first)
            async for chunk in self._chunks:
                await self._feed(sink, chunk)
        except UpstreamReadTimeout:
            self._transport_error = "timeout"
        except asyncio.CancelledError:
            # close-on-disconnect, or a shutdown past its grace period that cut the client:
            # either way the client is gone; bill what was seen
            self.client_gone = True
        except Exception as exc:  # whatever broke the stream, the row is still settled
            log.warning("upstream stream broke: %s", type(exc).__name__)
            self._transport_error = "broken"
        finally:
            self._sink = None
            await asyncio.shield(self._finish())

    async def _finish(self) -> None:
        with contextlib.suppress(OSError):
            await self.response.aclose()
        status = outcome(
            self.meter, client_gone=self.client_gone, transport_error=self._transport_error
        )
        usage = self.meter.usage
        # The delta count stands in for output tokens only when the final usage never came
        # (message_delta carries it, with the stop reason): a complete stream's usage is
        # exact, and deltas that carry no token (signature_delta, an empty input_json_delta)
        # must not raise it.
        if self.meter.stop_reason is None and self._deltas > usage.output_tokens:
            usage = replace(usage, output_tokens=self._deltas)
        await self.metered.settle(
            usage,
            status,
            first_chunk_mono=self.first_chunk_mono,
            upstream_request_id=self.upstream_request_id,
            http_status=self.response.status_code,
            error_type=self.meter.error_type,
        )
        if not self.client_gone and self._queue is not None:
            await self._queue.put(_END)
