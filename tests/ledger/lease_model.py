"""Simulated server processes for the lease invariant tests: each has its own LeaseBook (with
its own clock) and talks to the real Postgres functions; nothing of ours is mocked."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from api.ledger.functions import OpenRequest, Settlement, reserve, settle
from api.ledger.leases import LeaseBook, Subject, Ticket

STALE_S = 30.0
PERIOD = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def a_minute_ago() -> datetime:
    """Rows start a minute back: past the reaper's stale window (it may take a dead process's
    rows at once), well inside its maximum age (it leaves a live process's rows alone)."""
    return datetime.now(UTC) - timedelta(minutes=1)


_START = text(
    "INSERT INTO usage_ledger (id, tenant_id, api_key_id, end_user_id, endpoint, model, status,"
    " started_at, owner, reserved_usd, period_start, lease_id) VALUES (:id, :tenant, :key,"
    " :user, 'messages', 'claude-haiku-4-5', 'in_flight', :started, :owner, 0, :period_start,"
    " :lease)"
)
_BEAT = text(
    "INSERT INTO server_heartbeats (owner, last_seen) VALUES (:owner, now()) "
    "ON CONFLICT (owner) DO UPDATE SET last_seen = now()"
)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Running:
    request_id: uuid.UUID
    worst_case: Decimal
    ticket: Ticket | None  # None: reserved per request


@dataclass
class Process:
    owner: str
    book: LeaseBook
    clock: Clock
    running: list[Running] = field(default_factory=list)
    unlanded: list[tuple[Running, Decimal]] = field(default_factory=list)
    admitted: int = 0
    leased: int = 0  # admitted against leases: each needed an rpm permit
    permits: int = 0  # rpm permits Postgres granted this process

    @classmethod
    def start(cls, name: str) -> Process:
        clock = Clock()
        owner = f"sim-{name}-{uuid.uuid4().hex[:6]}"
        return cls(owner, LeaseBook(owner, STALE_S, clock=clock), clock)

    async def heartbeat(self, conn: AsyncConnection) -> None:
        sent = self.clock()
        await conn.execute(_BEAT, {"owner": self.owner})
        self.book.heartbeat_sent(sent)

    async def admit(
        self,
        conn: AsyncConnection,
        rng: random.Random,
        tenant: uuid.UUID,
        key: uuid.UUID,
        user: uuid.UUID | None,
    ) -> str:
        """Admit one request: against a lease (refilling once if needed), else per request."""
        worst = Decimal(rng.randint(1, 12)) / 100
        return await self._admit(
            conn, tenant, key, user, worst, rng.random() < 0.8, rng.randint(1, 6)
        )

    async def admit_worst(
        self,
        conn: AsyncConnection,
        tenant: uuid.UUID,
        key: uuid.UUID,
        worst: Decimal,
        refill: bool = True,
    ) -> str:
        return await self._admit(conn, tenant, key, None, worst, refill, 4)

    async def _admit(
        self,
        conn: AsyncConnection,
        tenant: uuid.UUID,
        key: uuid.UUID,
        user: uuid.UUID | None,
        worst: Decimal,
        refill: bool,
        multiple: int,
    ) -> str:
        subject = Subject(tenant, user, *PERIOD)
        rid = uuid.uuid4()
        ticket = self.book.admit(rid, subject, worst, key)
        if ticket is None and refill:
            # As the request path refills (api/ledger/leasing.py), with every limit "roomy".
            if subject.end_user_id is not None:  # slots come from the tenant's lease
                await self.book.refill_for(
                    conn, subject.tenant, key=None, want_usd=Decimal(0), min_usd=Decimal(0),
                    want_slots=2, min_slots=1, want_permits=0, min_rpm=1,
                )  # fmt: skip
            got = await self.book.refill_for(
                conn, subject, key=key, want_usd=worst * multiple, min_usd=worst,
                want_slots=2, min_slots=1, want_permits=multiple, min_rpm=1,
            )  # fmt: skip
            self.permits += got.permits if got is not None else 0
            ticket = self.book.admit(rid, subject, worst, key)
        if ticket is not None:
            self.admitted += 1
            self.leased += 1
            params = {
                "id": rid,
                "tenant": tenant,
                "key": key,
                "user": user,
                "started": a_minute_ago(),
                "owner": self.owner,
                "period_start": PERIOD[0],
                "lease": ticket.money.id,
            }
            await conn.execute(_START, params)
            self.running.append(Running(rid, worst, ticket))
            return "leased"
        decision = await reserve(
            conn,
            OpenRequest(
                rid,
                tenant,
                key,
                user,
                "messages",
                "claude-haiku-4-5",
                a_minute_ago(),
                self.owner,
                *PERIOD,
                worst,
                worst,
            ),
        )
        if decision.outcome == "ok":
            self.admitted += 1
            self.running.append(Running(rid, worst, None))
        return decision.outcome

    def finish(self, rng: random.Random) -> None:
        """A running request ends; its settlement is on its way (not yet in Postgres)."""
        if not self.running:
            return
        run = self.running.pop(rng.randrange(len(self.running)))
        cost = (run.worst_case * Decimal(rng.randint(0, 100)) / 100).quantize(Decimal("0.0001"))
        if run.ticket is not None:
            self.book.finished(run.ticket, cost)
        self.unlanded.append((run, cost))

    async def land(
        self, conn: AsyncConnection, rng: random.Random, everything: bool = False
    ) -> None:
        """Settlements reach Postgres (a batch flush)."""
        rng.shuffle(self.unlanded)
        count = len(self.unlanded) if everything else rng.randint(0, len(self.unlanded))
        for run, cost in self.unlanded[:count]:
            await settle(conn, settlement(run.request_id, cost))
            self.book.landed(run.request_id)
        del self.unlanded[:count]


def settlement(request_id: uuid.UUID, cost: Decimal) -> Settlement:
    return Settlement(
        id=request_id,
        status="ok",
        model="claude-haiku-4-5",
        input_tokens=1,
        output_tokens=1,
        cache_write_5m_tokens=0,
        cache_write_1h_tokens=0,
        cache_read_tokens=0,
        web_search_requests=0,
        cost_usd=cost,
        price_version=None,
        first_token_at=None,
        ended_at=datetime.now(UTC),
        upstream_request_id=None,
        http_status=200,
        error_type=None,
    )
