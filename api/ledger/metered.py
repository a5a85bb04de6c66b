"""One admitted request, owned by one object that settles its ledger row exactly once.

`Ledger.admit` (api/ledger/service.py) reserves and hands back a `MeteredRequest`. The request
path runs inside `async with metered:`; whatever ends it settles the row, once:

* a normal end settles explicitly (`settle`, with the usage seen);
* an exception that says how it ended (`EndedBeforeStream`: the upstream refused, timed out or
  could not be reached) settles with its status;
* cancellation (the client hung up) settles as `client_disconnected`; any other exception as
  `incomplete`;
* a stream is handed to a pump task that this object spawns and owns (`spawn`): the pump
  settles when the stream ends, and if it ends without settling, this object does.

Building the row, notifying the observers (metrics) and writing it happen here and nowhere
else."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from api.errors import TollgateError
from api.ledger.functions import Settlement
from api.pricing.cost import Usage, compute_cost
from api.pricing.model import ModelPrice

if TYPE_CHECKING:
    from api.ledger.leases import Ticket
    from api.ledger.service import Ledger

log = logging.getLogger(__name__)


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
    tenant_id: uuid.UUID | None = None
    ticket: Ticket | None = None  # admitted against escrow leases (api/ledger/leases.py)

    def at(self, mono: float) -> datetime:
        return self.started_at + timedelta(seconds=mono - self.started_mono)


class EndedBeforeStream(Exception):
    """Mixed into an exception raised inside `async with metered:` when the request ended
    before any stream (the upstream refused, timed out, or could not be reached): the owner
    settles the row as these attributes say."""

    ledger_status: str = "upstream_error"
    ledger_error_type: str | None = None
    http_status: int | None = None
    upstream_request_id: str | None = None


class MeteredRequest:
    def __init__(self, ledger: Ledger, ctx: CallContext) -> None:
        self.ctx = ctx
        self.settlement: Settlement | None = None
        self._ledger = ledger
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> MeteredRequest:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, TollgateError):  # every answer of an admitted request says where
            exc.headers = {**self.ctx.headers, **exc.headers}  # the tenant stands
        if self._pump is not None or self.settlement is not None:
            return  # settled, or the pump owns the settlement from here
        await asyncio.shield(self._settle_ended(exc))

    async def _settle_ended(self, exc: BaseException | None) -> None:
        if isinstance(exc, EndedBeforeStream):
            await self.settle(
                Usage(),
                exc.ledger_status,
                http_status=exc.http_status,
                error_type=exc.ledger_error_type,
                upstream_request_id=exc.upstream_request_id,
            )
        elif isinstance(exc, asyncio.CancelledError):
            await self.settle(Usage(), "client_disconnected")
        else:
            if exc is None:
                log.warning("request %s ended unsettled", self.ctx.request_id)
            await self.settle(Usage(), "incomplete", error_type="api_error")

    @property
    def pump(self) -> asyncio.Task[None] | None:
        return self._pump

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run the stream's pump as a task this request owns (and the ledger waits for at
        shutdown). The pump settles when its stream ends; if it did not, this does."""
        if self._pump is not None:
            raise RuntimeError("a metered request has one pump")

        async def owned() -> None:
            try:
                await work
            finally:
                if self.settlement is None:
                    await asyncio.shield(self.settle(Usage(), "incomplete", error_type="api_error"))

        self._pump = asyncio.create_task(owned(), name=f"pump-{self.ctx.request_id}")
        self._ledger.track(self._pump)
        return self._pump

    async def settle(
        self,
        usage: Usage,
        status: str,
        *,
        first_chunk_mono: float | None = None,
        upstream_request_id: str | None = None,
        http_status: int | None = None,
        error_type: str | None = None,
    ) -> Settlement:
        """Make the row final: build it, tell the observers, write it (or spool it). Only the
        first call settles; later ones return the same settlement."""
        if self.settlement is not None:
            return self.settlement
        ctx = self.ctx
        settlement = Settlement(
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
            error_type=error_type,
        )
        self.settlement = settlement
        ttft_s = first_chunk_mono - ctx.started_mono if first_chunk_mono is not None else None
        duration_s = time.monotonic() - ctx.started_mono
        await self._ledger.record(ctx, settlement, duration_s=duration_s, ttft_s=ttft_s)
        return settlement
