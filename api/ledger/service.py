"""The ledger as the request path sees it: admit a request (reserve, or refuse) and get the
one object that settles it (`MeteredRequest`); observers (metrics) registered at start-up hear
every reservation decision and every settlement. Pumps of admitted requests are tracked here so
shutdown waits for them to settle."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from api.ledger.functions import OpenRequest, Reservation, Settlement
from api.ledger.leases import Ticket
from api.ledger.leasing import Leasing
from api.ledger.metered import CallContext, MeteredRequest
from api.ledger.writer import LedgerWriter
from api.pricing.model import ModelPrice

log = logging.getLogger(__name__)


class LedgerObserver(Protocol):
    def reservation(self, endpoint: str, outcome: str) -> None:
        """The reservation decision: `ok`, or the kind of limit that refused the request."""

    def settled(
        self, endpoint: str, settlement: Settlement, *, duration_s: float, ttft_s: float | None
    ) -> None:
        """An admitted request's final row (written or spooled)."""


Decide = Callable[[Reservation], dict[str, str]]
"""Quota policy: the response headers for an admitted request; raises the refusal (402/429)."""


class Ledger:
    def __init__(self, writer: LedgerWriter, leasing: Leasing | None = None) -> None:
        self.writer = writer
        self.leasing = leasing
        self._observers: list[LedgerObserver] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        if leasing is not None:
            writer.batcher.on_landed(leasing.landed)

    def observe(self, observer: LedgerObserver) -> None:
        self._observers.append(observer)

    async def admit(
        self,
        row: OpenRequest,
        price: ModelPrice,
        decide: Decide,
        *,
        per_request: bool = False,
    ) -> MeteredRequest:
        """Admit against this process's escrow leases (no database round trip: the start row
        is journaled and written with the next batch), or else reserve the request's cost and
        open its in-flight row per request if every limit allows (503 when the database cannot
        be reached, 529 when it is too busy); return the request's owner, or raise the
        refusal. `per_request`: the key has a budget of its own (only `tollgate_reserve` checks
        it). `price` is the version in force when the request started: it prices the
        settlement."""
        ticket: Ticket | None = None
        leased = self.leasing.admit(row) if self.leasing is not None and not per_request else None
        if leased is not None:
            ticket, decision = leased
            try:
                self.writer.start_leased(row, ticket.money.id)
            except OSError:  # the journal cannot be written: reserve per request instead
                log.exception("journal write failed; reserving per request")
                assert self.leasing is not None
                self.leasing.finished(ticket, Decimal(0))
                self.leasing.landed([], [row.id])
                ticket = None
        if ticket is None:
            decision = await self.writer.open(row)
            if self.leasing is not None:
                self.leasing.learned(row, decision)
        for observer in self._observers:
            observer.reservation(row.endpoint, decision.outcome)
        headers = decide(decision)  # a refused request opened no row: nothing to settle
        if decision.outcome != "ok":
            raise RuntimeError(f"quota policy admitted a refused request ({decision.outcome})")
        ctx = CallContext(
            request_id=row.id,
            endpoint=row.endpoint,
            model=row.model,
            price=price,
            price_version=price.version,
            started_at=row.started_at,
            started_mono=time.monotonic(),
            headers=headers,
            tenant_id=row.tenant_id,
            ticket=ticket,
        )
        return MeteredRequest(self, ctx)

    async def record(
        self,
        ctx: CallContext,
        settlement: Settlement,
        *,
        duration_s: float,
        ttft_s: float | None,
    ) -> None:
        """Tell the observers, then hand the row to the batcher (journaled now, written with
        the next batch: never raises for the database)."""
        for observer in self._observers:
            observer.settled(ctx.endpoint, settlement, duration_s=duration_s, ttft_s=ttft_s)
        if ctx.ticket is not None and self.leasing is not None:
            self.leasing.finished(ctx.ticket, settlement.cost_usd)
        self.writer.settle(ctx.tenant_id, settlement)

    def track(self, task: asyncio.Task[Any]) -> None:
        """Keep a request's pump until it ends, so shutdown can wait for it."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Settle every pump still running, then stop the writer. The server has already given
        streams their grace period (TOLLGATE_SHUTDOWN_GRACE_S) before this runs; a pump still
        running `grace_s` later (a drain whose client was cut) is cancelled, which settles it
        with what it saw (written, or spooled)."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in late:
                task.cancel()
            if late:
                log.warning("shutdown: %d streams cut and billed for what was seen", len(late))
                await asyncio.wait(late, timeout=self.writer.write_timeout_s + 5)
        if self.leasing is not None:
            await self.writer.flush()  # their settlements land: the leases keep nothing for them
            await self.leasing.stop()
        await self.writer.stop()
