"""Escrow leases, the process side: what this process holds of each tenant's (or active end
user's) budget and of each tenant's concurrency slots, and local admission against it.

Postgres counts every lease into its counters (`reserved_usd`, `in_flight`), so in hard mode
`settled spend + per-request reservations + leased escrow <= limit` at every instant, whatever
the processes do; a lease-admitted request only moves money inside its lease. Locally, per
lease: `escrow` is what Postgres holds for it once every settlement handed off has landed,
`committed` the worst cases of its requests in flight and `pending` the costs of settlements
not yet landed (Postgres takes them out of the lease when they land); a request is admitted
when its worst case fits in `escrow - committed - pending`.

Trust: a lease is used only while this process's heartbeat is fresh (`valid_until`, a margin
inside the reaper's stale window), so the reaper can never hand a lease to others while this
process still admits against it. A lease that went stale locally, or that Postgres no longer
has, is retired: no new admissions; its requests still settle, and what is left is returned.

SQL: tollgate_lease_refill / tollgate_lease_return / tollgate_reap_leases, current definitions
in `sql/`. One statement per refill or return; none per request.
A key with its own monthly budget (`Principal.reserves_per_request`) is never admitted against
a lease: only `tollgate_reserve` checks key budgets (see api/ledger/sql/tollgate_reserve.sql)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

ZERO = Decimal(0)

_RETURN = text("SELECT * FROM tollgate_lease_return(:tenant, :lease, :keep_usd, :keep_slots)")
_REFILL = text(
    "SELECT * FROM tollgate_lease_refill(:lease, :new, :owner, :tenant, :user, :key, "
    ":period_start, :period_end, :want_usd, :min_usd, :want_slots, :min_slots, :want_permits, "
    ":min_rpm, :stale)"
)
PERMIT_MARGIN_S = 0.2  # permits end this much before the minute does (by our clock)


@dataclass(frozen=True)
class Subject:
    tenant_id: uuid.UUID
    end_user_id: uuid.UUID | None
    period_start: datetime
    period_end: datetime

    @property
    def tenant(self) -> Subject:
        return Subject(self.tenant_id, None, self.period_start, self.period_end)


@dataclass(frozen=True)
class Standing:
    """The limits of a lease's tenant (and end user) and where it stood at the last refill."""

    mode: str  # hard | soft
    budget: Decimal
    spent: Decimal
    reserved: Decimal  # every lease included
    rpm: int
    concurrency: int
    in_flight: int  # leased slots included
    user_budget: Decimal | None
    user_spent: Decimal | None
    live: int


@dataclass(frozen=True)
class Refill:
    usd: Decimal
    slots: int
    permits: int
    lost: bool
    standing: Standing


@dataclass
class Lease:
    subject: Subject
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    escrow: Decimal = ZERO
    committed: Decimal = ZERO
    pending: Decimal = ZERO
    slots: int = 0
    used_slots: int = 0
    in_flight: int = 0
    exists: bool = False  # Postgres has its row (a refill must find it)
    admitted_since: Decimal = ZERO  # worst cases admitted since the last refill
    refilled_at: float = 0.0
    retired: bool = False
    last_used: float = 0.0
    standing: Standing | None = None  # from the last refill (tollgate_lease_refill)
    last_grant: Decimal = ZERO
    last_slot_grant: int = 0

    @property
    def available(self) -> Decimal:
        return self.escrow - self.committed - self.pending

    @property
    def keep_usd(self) -> Decimal:
        """What the lease must keep covering: requests in flight and costs not yet landed."""
        return self.committed + self.pending


@dataclass
class Permits:
    """rpm permits of one key: counted in Postgres for the minute that ends at `expires`
    (this process's clock, a margin early)."""

    remaining: int = 0
    expires: float = 0.0
    granted: int = 0  # the last grant (refill ahead when few of it are left)


@dataclass(frozen=True)
class Ticket:
    """One request admitted against leases: its money lease and its slot lease."""

    request_id: uuid.UUID
    money: Lease
    slot: Lease
    worst_case: Decimal


class LeaseBook:
    def __init__(
        self,
        owner: str,
        stale_s: float,
        *,
        margin_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.owner = owner
        self.stale_s = stale_s
        self._margin = margin_s if margin_s is not None else stale_s / 3
        self._clock = clock
        self._valid_until = 0.0
        self.leases: dict[Subject, Lease] = {}
        self.retired: list[Lease] = []
        self._landing: dict[uuid.UUID, tuple[Lease, Decimal]] = {}
        self.permits: dict[uuid.UUID, Permits] = {}

    def heartbeat_sent(self, sent_at: float) -> None:
        """Our heartbeat, sent at `sent_at` (this clock), committed: leases are good until a
        margin before the reaper could call us stale."""
        self._valid_until = max(self._valid_until, sent_at + self.stale_s - self._margin)

    @property
    def trusted(self) -> bool:
        if self._clock() < self._valid_until:
            return True
        for lease in list(self.leases.values()):
            self._retire(lease)
        return False

    def lease(self, subject: Subject) -> Lease:
        lease = self.leases.get(subject)
        if lease is None:
            lease = self.leases[subject] = Lease(subject)
        return lease

    def admit(
        self,
        request_id: uuid.UUID,
        subject: Subject,
        worst_case: Decimal,
        key: uuid.UUID | None = None,
    ) -> Ticket | None:
        """Admit in memory — budget, a slot and (with `key`) an rpm permit — or None (refill,
        or reserve per request)."""
        if not self.trusted:
            return None
        money = self.leases.get(subject)
        slot = self.leases.get(subject.tenant)
        if money is None or slot is None or money.available < worst_case:
            return None
        if slot.used_slots >= slot.slots:
            return None
        if key is not None and not self._take_permit(key):
            return None
        money.committed += worst_case
        money.admitted_since += worst_case
        money.in_flight += 1
        slot.used_slots += 1
        money.last_used = slot.last_used = self._clock()
        return Ticket(request_id, money, slot, worst_case)

    def _take_permit(self, key: uuid.UUID) -> bool:
        permits = self.permits.get(key)
        if permits is None or permits.remaining <= 0 or self._clock() >= permits.expires:
            return False
        permits.remaining -= 1
        return True

    def finished(self, ticket: Ticket, cost: Decimal) -> None:
        """The request ended with `cost`; its settlement is on its way to Postgres."""
        money = ticket.money
        money.committed -= ticket.worst_case
        money.pending += cost
        money.in_flight -= 1
        ticket.slot.used_slots -= 1
        self._landing[ticket.request_id] = (money, cost)

    def landed(self, request_id: uuid.UUID) -> None:
        """The settlement is in Postgres: its cost left the lease there too."""
        found = self._landing.pop(request_id, None)
        if found is not None:
            money, cost = found
            money.pending -= cost
            money.escrow -= min(cost, money.escrow)

    def _retire(self, lease: Lease) -> None:
        if self.leases.get(lease.subject) is lease:
            del self.leases[lease.subject]
        lease.retired = True
        self.retired.append(lease)

    def want(
        self, subject: Subject, worst_case: Decimal, *, horizon_s: float = 2.0, floor: int = 8
    ) -> Decimal:
        """How much to ask for: what this lease consumed per second since its last refill,
        times `horizon_s` (refill ahead of need), and at least `floor` worst cases. Postgres
        caps it at the remainder divided by the live processes."""
        lease = self.leases.get(subject)
        least = worst_case * floor
        if lease is None or lease.refilled_at == 0.0:
            return least
        elapsed = max(self._clock() - lease.refilled_at, 0.05)
        rate = lease.admitted_since / Decimal(str(elapsed))
        return max(least, (rate * Decimal(str(horizon_s))).quantize(Decimal("0.000001")))

    async def refill_for(
        self,
        conn: AsyncConnection,
        subject: Subject,
        *,
        key: uuid.UUID | None,
        want_usd: Decimal,
        min_usd: Decimal,
        want_slots: int,
        min_slots: int,
        want_permits: int,
        min_rpm: int,
    ) -> Refill | None:
        """The request path's refill: money, slots (tenant leases) and `key`'s rpm permits,
        and the tenant's limits, in one statement (`tollgate_lease_refill`). None when this
        process is not trusted (its heartbeat is late)."""
        if not self.trusted:
            return None
        lease = self.lease(subject)
        sent = self._clock()
        params = {
            "lease": lease.id,
            "new": not lease.exists,
            "owner": self.owner,
            "tenant": subject.tenant_id,
            "user": subject.end_user_id,
            "key": key,
            "period_start": subject.period_start,
            "period_end": subject.period_end,
            "want_usd": want_usd,
            "min_usd": min_usd,
            "want_slots": want_slots if subject.end_user_id is None else 0,
            "min_slots": min_slots,
            "want_permits": want_permits if key is not None else 0,
            "min_rpm": min_rpm,
            "stale": self.stale_s,
        }
        row = (await conn.execute(_REFILL, params)).one()
        standing = Standing(
            mode=str(row.mode),
            budget=Decimal(row.budget),
            spent=Decimal(row.spent),
            reserved=Decimal(row.reserved),
            rpm=int(row.rpm),
            concurrency=int(row.concurrency),
            in_flight=int(row.in_flight),
            user_budget=None if row.user_budget is None else Decimal(row.user_budget),
            user_spent=None if row.user_spent is None else Decimal(row.user_spent),
            live=int(row.live),
        )
        granted, slots = Decimal(row.granted_usd), int(row.granted_slots)
        if row.lost:
            self._retire(lease)
            return Refill(ZERO, 0, 0, True, standing)
        lease.standing = standing
        lease.admitted_since = ZERO
        lease.refilled_at = self._clock()
        if granted or slots:
            lease.exists = True
            lease.escrow += granted
            lease.slots += slots
        lease.last_grant = granted
        lease.last_slot_grant = slots
        permits = int(row.permits)
        if key is not None and permits:
            expires = sent + float(row.permit_seconds_left) - PERMIT_MARGIN_S
            held = self.permits.get(key)
            if held is not None and self._clock() < held.expires:
                held.remaining += permits
                held.granted = permits
            else:
                self.permits[key] = Permits(permits, expires, permits)
        return Refill(granted, slots, permits, False, standing)

    async def give_back(self, conn: AsyncConnection, lease: Lease) -> tuple[Decimal, int]:
        """Return what `lease` holds beyond its requests in flight (and a retired lease's
        everything once they are done); one statement. What is being returned is taken out of
        the lease here first, so nothing is admitted against it while the statement runs."""
        if not lease.exists:
            return ZERO, 0
        keep_usd = lease.keep_usd
        keep_slots = lease.used_slots
        returning = max(lease.escrow - keep_usd, ZERO)
        returning_slots = max(lease.slots - keep_slots, 0)
        lease.escrow -= returning
        lease.slots -= returning_slots
        params = {
            "tenant": lease.subject.tenant_id,
            "lease": lease.id,
            "keep_usd": keep_usd,
            "keep_slots": keep_slots,
        }
        try:
            released, released_slots = (await conn.execute(_RETURN, params)).one()
        except BaseException:
            lease.escrow += returning  # not returned: still ours
            lease.slots += returning_slots
            raise
        # Postgres released what it held beyond `keep` (it may hold less than we thought: a
        # settlement landed meanwhile); what we set aside and it did not release stays ours.
        lease.escrow += max(returning - Decimal(released), ZERO)
        lease.slots += max(returning_slots - int(released_slots), 0)
        if lease.retired and lease.in_flight == 0 and lease.pending == 0:
            lease.exists = False
            if lease in self.retired:
                self.retired.remove(lease)
        return Decimal(released), int(released_slots)

    async def return_idle(self, conn: AsyncConnection, idle_s: float) -> Decimal:
        """Give back leases unused for `idle_s`, and whatever retired leases no longer need."""
        now = self._clock()
        total = ZERO
        for lease in [*self.retired, *self.leases.values()]:
            if lease.retired or now - lease.last_used >= idle_s:
                total += (await self.give_back(conn, lease))[0]
        return total

    async def return_all(self, conn: AsyncConnection) -> Decimal:
        """At shutdown: give back everything not covering a request in flight."""
        total = ZERO
        for lease in [*self.retired, *self.leases.values()]:
            total += (await self.give_back(conn, lease))[0]
        return total
