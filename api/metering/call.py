"""One metered upstream call: a pump task reads the upstream stream, meters every chunk and
hands it to a sink — the ASGI `send` of /v1/messages directly, or a small queue that /chat's
encoder reads; when the stream ends (or fails, or the client leaves) the pump settles the
ledger row itself. The pump owns the upstream response, so a client hang-up or a cancelled
handler can never skip the ledger write.

Client hang-up: `drain` keeps reading the upstream to its end so the exact usage is billed;
`close` closes the upstream at once and bills what was seen (output from the last usage, or the
number of text deltas if that is more)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import httpx2

from api.ledger.functions import Settlement
from api.ledger.writer import LedgerWriter
from api.metering.meter import UsageMeter
from api.observability.metrics import Metrics
from api.pricing.cost import compute_cost
from api.pricing.model import ModelPrice

log = logging.getLogger(__name__)

Sink = Callable[[bytes], Awaitable[None]]
_END = b""
_QUEUE_CHUNKS = 64  # backpressure: a slow client slows the upstream read, not our memory
_DELTA_EVENT = b"event: content_block_delta"


@dataclass(frozen=True)
class CallContext:
    request_id: uuid.UUID
    endpoint: str  # chat | messages
    model: str
    price: ModelPrice
    price_version: str
    started_at: datetime
    started_mono: float
    headers: dict[str, str] = field(default_factory=dict)  # quota headers for the response

    def at(self, mono: float) -> datetime:
        return self.started_at + timedelta(seconds=mono - self.started_mono)


def outcome(meter: UsageMeter, *, client_gone: bool, transport_error: str | None) -> str:
    """The ledger status of a stream that got past its first byte."""
    if meter.error_type is not None:
        return "upstream_error"
    if client_gone:
        return "client_disconnected"
    if transport_error == "timeout":
        return "timeout"
    return "ok" if meter.complete else "incomplete"


def build_settlement(
    ctx: CallContext,
    meter: UsageMeter,
    status: str,
    *,
    first_chunk_mono: float | None,
    upstream_request_id: str | None,
    http_status: int | None,
    error_type: str | None = None,
    counted_deltas: int = 0,
) -> Settlement:
    usage = meter.usage
    if counted_deltas > usage.output_tokens:
        usage = replace(usage, output_tokens=counted_deltas)
    return Settlement(
        id=ctx.request_id,
        status=status,
        model=ctx.model,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_write_5m_tokens=usage.cache_write_5m_tokens,
        cache_write_1h_tokens=usage.cache_write_1h_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        web_search_requests=usage.web_search_requests,
        cost_usd=compute_cost(ctx.price, usage),
        price_version=ctx.price_version,
        speed=usage.speed,
        inference_geo=usage.inference_geo,
        first_token_at=ctx.at(first_chunk_mono) if first_chunk_mono is not None else None,
        ended_at=datetime.now(UTC),
        upstream_request_id=upstream_request_id,
        http_status=http_status,
        error_type=error_type or meter.error_type,
    )


class MeteredCall:
    def __init__(
        self,
        ctx: CallContext,
        response: httpx2.Response,
        chunks: AsyncIterator[bytes],
        first_chunk: bytes,
        writer: LedgerWriter,
        metrics: Metrics,
        *,
        drain_on_disconnect: bool,
    ) -> None:
        self.ctx = ctx
        self.response = response
        self.meter = UsageMeter()
        self.first_chunk_mono = time.monotonic()
        self.client_gone = False
        self.settlement: Settlement | None = None
        self._chunks = chunks
        self._first = first_chunk
        self._writer = writer
        self._metrics = metrics
        self._drain = drain_on_disconnect
        self._transport_error: str | None = None
        self._deltas = 0
        self._queue: asyncio.Queue[bytes] | None = None
        self._sink: Sink | None = None
        self._pump: asyncio.Task[None] | None = None

    def start(self, sink: Sink) -> None:
        """Start pumping; every chunk goes to `sink` until the client is gone."""
        self._sink = sink
        self._pump = self._writer.spawn(self._run(), name=f"pump-{self.ctx.request_id}")

    @property
    def upstream_request_id(self) -> str | None:
        return self.response.headers.get("request-id")

    async def relay(self) -> AsyncIterator[bytes]:
        """Start pumping into a queue and yield the upstream bytes as they arrive."""
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
        if not self._drain and self._pump is not None:
            self._pump.cancel()

    async def finished(self) -> Settlement | None:
        """Wait until the row is settled."""
        if self._pump is not None:
            await asyncio.wait({self._pump})
        return self.settlement

    async def _feed(self, chunk: bytes) -> None:
        self.meter.observe(chunk)
        self._deltas += chunk.count(_DELTA_EVENT)
        if not self.client_gone and self._sink is not None:
            await self._sink(chunk)

    async def _run(self) -> None:
        try:
            await self._feed(self._first)
            async for chunk in self._chunks:
                await self._feed(chunk)
        except httpx2.TimeoutException:
            self._transport_error = "timeout"
        except asyncio.CancelledError:
            # close-on-disconnect, or a shutdown past its grace period that cut the client:
            # either way the client is gone; bill what was seen
            self.client_gone = True
        except Exception as exc:  # whatever broke the stream, the row is still settled
            log.warning("upstream stream broke: %s", type(exc).__name__)
            self._transport_error = "broken"
        finally:
            await asyncio.shield(self._finish())

    async def _finish(self) -> None:
        with contextlib.suppress(httpx2.HTTPError, OSError):
            await self.response.aclose()
        status = outcome(
            self.meter, client_gone=self.client_gone, transport_error=self._transport_error
        )
        self.settlement = build_settlement(
            self.ctx,
            self.meter,
            status,
            first_chunk_mono=self.first_chunk_mono,
            upstream_request_id=self.upstream_request_id,
            http_status=self.response.status_code,
            counted_deltas=self._deltas,
        )
        started = self.ctx.started_mono
        self._metrics.settled(
            self.ctx.endpoint,
            self.settlement,
            duration_s=time.monotonic() - started,
            ttft_s=self.first_chunk_mono - started,
        )
        await self._writer.settle(self.settlement)
        if not self.client_gone and self._queue is not None:
            await self._queue.put(_END)
