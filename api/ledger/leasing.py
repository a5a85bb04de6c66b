"""Escrow leases on the request path: admit in memory against what this process holds
(api/ledger/leases.py), and keep the leases topped up in the background, ahead of need.

* A request whose key has a budget of its own never comes here (`tollgate_reserve` alone checks
  key budgets). Nor does an end user whose budget status this process does not know yet: the
  per-request path decides, and tells us (`learned`) whether the user has a budget.
* An end user without a budget of their own is admitted against the tenant's lease. An end user
  with one gets a lease of their own only while active (several requests within
  `ACTIVE_WINDOW_S`); idle leases go back after `idle_s`.
* A miss (no lease, not enough left, no slot or rpm permit) starts a refill and the request
  reserves per request now: it never waits for a refill. A hit that leaves less than the
  low-water mark (the demand over `lead_s`: several refill round trips) starts a refill too,
  so that at a steady rate the lease never runs dry; refills are sized from the demand (hits
  and misses) over `horizon_s`.
* Small limits get nothing (tollgate_lease_refill: concurrency below `min_slots`, rpm below
  `min_rpm` per live process, or a remainder below `min_worst_cases` worst cases per process):
  those tenants are decided per request, exactly as before leases. A refill that is refused
  money gives back what the lease still holds, so nothing stays stranded near the limit.
* The amount admitted is the request's worst case in hard mode and the estimate in soft mode
  (the tenant's mode as of the last refill)."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from api.db.errors import DB_ERRORS
from api.ledger.functions import OpenRequest, Reservation
from api.ledger.leases import PERMIT_MARGIN_S, ZERO, Lease, LeaseBook, Subject, Ticket

log = logging.getLogger(__name__)

ACTIVE_WINDOW_S = 10.0
PERMIT_REFRESH_S = 5.0  # permits expiring sooner than this are refilled
MAX_SLOTS = 4096
MAX_PERMITS = 10_000
BUDGETED_USER_TTL_S = 60.0  # "this user has a budget": stale only costs a user lease
REFUSED_BACKOFF_S = 1.0
ROOMY_TTL_S = 30.0  # a subject whose refill got nothing is not asked for again this soon
MIN_LEAD_S = 0.25  # refill when what is left covers less than this much of the demand ...
LEAD_LATENCIES = 4  # ... or less than this many refill round trips (whichever is longer)
FIRST_LATENCY_S = 0.05  # the refill round trip assumed until one was measured


class Leasing:
    def __init__(
        self,
        engine: AsyncEngine,
        book: LeaseBook,
        *,
        min_worst_cases: int = 32,
        min_slots: int = 64,
        min_rpm: int = 600,
        horizon_s: float = 2.0,
        ahead: Decimal = Decimal("0.5"),
        idle_s: float = 15.0,
        user_ttl_s: float = 5.0,
        active_requests: int = 4,
        on_refill: Callable[[str], None] | None = None,
        on_admission: Callable[[str], None] | None = None,
    ) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.book = book
        self.min_worst_cases = min_worst_cases
        self.min_slots = min_slots
        self.min_rpm = min_rpm
        self.horizon_s = horizon_s
        self.ahead = ahead
        self.idle_s = idle_s
        self.user_ttl_s = user_ttl_s
        self.active_requests = active_requests
        self._on_refill = on_refill or (lambda result: None)
        self._on_admission = on_admission or (lambda result: None)
        self._users: dict[tuple[uuid.UUID, uuid.UUID], tuple[bool, float]] = {}
        self._hits: dict[tuple[uuid.UUID, uuid.UUID], deque[float]] = {}
        self._refilling: set[Subject] = set()
        self._refused: dict[Subject, float] = {}  # subject -> no refill before (monotonic)
        self._roomy: dict[uuid.UUID, float] = {}  # tenant -> its limits looked roomy, until
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self.refills = 0
        # Demand (every request that came here, admitted from a lease or not), per money
        # subject and per key: the refills are sized from it, so a dry lease does not hide it.
        self._demand: dict[Subject | uuid.UUID, Demand] = {}
        self._latency_s = FIRST_LATENCY_S  # refill round trip (moving average)
        self.hits = 0
        self.misses: Counter[str] = Counter()

    # -- admission ---------------------------------------------------------------------------

    def admit(self, row: OpenRequest) -> tuple[Ticket, Reservation] | None:
        """Admit `row` against this process's leases, or None (reserve per request)."""
        subject = self._subject(row)
        if subject is None:
            return None
        money = self.book.leases.get(subject)
        if money is None or money.standing is None:
            roomy = self._roomy.get(row.tenant_id, 0.0) > time.monotonic()
            if roomy and (subject.end_user_id is None or self._active(row)):
                self._refill(subject, row.api_key_id, row.hard_usd)
            return None
        amount = row.soft_usd if money.standing.mode == "soft" else row.hard_usd
        now = time.monotonic()
        self._demand_of(subject).add(now, amount)
        self._demand_of(row.api_key_id).add(now, amount)
        ticket = self.book.admit(row.id, subject, amount, row.api_key_id)
        if ticket is None:
            why = self._why(subject, row.api_key_id, amount)
            self.misses[why] += 1
            self._on_admission(why)
        else:
            self.hits += 1
            self._on_admission("lease")
        self._refill_ahead(subject, row.api_key_id, amount)
        if ticket is None:
            return None
        return ticket, _standing(ticket)

    def _why(self, subject: Subject, key: uuid.UUID, amount: Decimal) -> str:
        """Why a request with a lease was not admitted from it (for the log at shutdown)."""
        money = self.book.leases.get(subject)
        slot = self.book.leases.get(subject.tenant)
        if money is None or slot is None:
            return "untrusted" if not self.book.trusted else "no slot lease"
        if money.available < amount:
            return "money"
        if slot.used_slots >= slot.slots:
            return "slots"
        return "permits"

    def _demand_of(self, of: Subject | uuid.UUID) -> Demand:
        demand = self._demand.get(of)
        if demand is None:
            demand = self._demand[of] = Demand()
        return demand

    @property
    def lead_s(self) -> float:
        """How far ahead of need a refill starts: several refill round trips, at least
        MIN_LEAD_S. Demand over this long must never find its lease dry."""
        return max(MIN_LEAD_S, LEAD_LATENCIES * self._latency_s)

    def learned(self, row: OpenRequest, decision: Reservation) -> None:
        """A per-request decision: remember whether the tenant's limits are roomy enough to
        lease (the first refill of a tenant waits for one: small limits never cost a refill),
        and whether its end user has a budget of their own."""
        if decision.outcome == "ok":
            left = decision.budget - decision.spent - decision.reserved
            if (
                decision.concurrency >= self.min_slots
                and decision.rpm >= self.min_rpm
                and left >= row.hard_usd * self.min_worst_cases
            ):
                self._roomy[row.tenant_id] = time.monotonic() + ROOMY_TTL_S
            else:
                self._roomy.pop(row.tenant_id, None)
        if row.end_user_id is None or decision.outcome not in ("ok", "user_budget"):
            return
        self._know_user(row.tenant_id, row.end_user_id, decision.user_budget is not None)

    def _know_user(self, tenant: uuid.UUID, user: uuid.UUID, has_budget: bool) -> None:
        """A user without a budget is admitted against the tenant's lease: that knowledge is
        trusted for `user_ttl_s` (a budget given meanwhile applies after it). A user with a
        budget only ever uses a lease of their own (which also covers the tenant's budget), so
        that knowledge may be older."""
        ttl = BUDGETED_USER_TTL_S if has_budget else self.user_ttl_s
        self._users[(tenant, user)] = (has_budget, time.monotonic() + ttl)

    def finished(self, ticket: Ticket, cost: Decimal) -> None:
        self.book.finished(ticket, cost)

    def landed(self, starts: list[uuid.UUID], settled: list[uuid.UUID]) -> None:
        for request_id in settled:
            self.book.landed(request_id)

    def _subject(self, row: OpenRequest) -> Subject | None:
        tenant = Subject(row.tenant_id, None, row.period_start, row.period_end)
        if row.end_user_id is None:
            return tenant
        known = self._users.get((row.tenant_id, row.end_user_id))
        if known is None or known[1] < time.monotonic():
            return None  # the per-request path tells us whether this user has a budget
        has_budget, _ = known
        return (
            Subject(row.tenant_id, row.end_user_id, row.period_start, row.period_end)
            if (has_budget)
            else tenant
        )

    def _active(self, row: OpenRequest) -> bool:
        assert row.end_user_id is not None
        now = time.monotonic()
        hits = self._hits.setdefault((row.tenant_id, row.end_user_id), deque())
        hits.append(now)
        while hits and hits[0] < now - ACTIVE_WINDOW_S:
            hits.popleft()
        return len(hits) >= self.active_requests

    # -- refills (background) ----------------------------------------------------------------

    def _refill_ahead(self, subject: Subject, key: uuid.UUID, amount: Decimal) -> None:
        money = self.book.leases.get(subject)
        slot = self.book.leases.get(subject.tenant)
        if self._money_short(money, amount) or _slots_short(slot) or self._permits_short(key):
            self._refill(subject, key, amount)

    def _money_short(self, money: Lease | None, amount: Decimal) -> bool:
        """Less is left than the demand of the next `lead_s` (or half the last grant), or
        than two requests' worth."""
        if money is None:
            return True
        rate = self._demand_of(money.subject).usd_per_s(time.monotonic())
        low_water = max(2 * amount, money.last_grant * self.ahead, rate * Decimal(str(self.lead_s)))
        return money.available < low_water

    def _permits_short(self, key: uuid.UUID) -> bool:
        """Fewer permits left than the key's demand of the next `lead_s` (at least 8 and a
        quarter of the last grant), or none valid. Permits count in the current minute only:
        in the last moments of a minute a refill would get permits that expire at once, so
        none are asked for until the minute has turned (the requests in between reserve
        per request)."""
        permits = self.book.permits.get(key)
        now = time.monotonic()
        if permits is None:
            return True
        if now >= permits.expires:
            return now >= permits.expires + 2 * PERMIT_MARGIN_S  # the minute has turned
        rate = self._demand_of(key).per_s(now)
        low_water = max(8, permits.granted // 4, math.ceil(rate * self.lead_s))
        return permits.remaining < low_water

    def _permits_wanted(self, key: uuid.UUID) -> int:
        """The key's demand over the horizon (at least 64, at most what is left of the
        minute), less what is left."""
        if not self._permits_short(key):
            return 0
        permits = self.book.permits.get(key)
        now = time.monotonic()
        rate = self._demand_of(key).per_s(now)
        want = max(64, math.ceil(rate * self.horizon_s))
        if permits is None or now >= permits.expires:
            return min(MAX_PERMITS, want)
        seconds_left = permits.expires - now
        want = min(want, max(64, math.ceil(rate * seconds_left)))
        return max(0, min(MAX_PERMITS, want - permits.remaining))

    def _slots_wanted(self, slot: Lease | None) -> int:
        """Up to twice the requests in flight (at least the minimum a tenant must allow to be
        leased at all), less what is held."""
        if not _slots_short(slot):
            return 0
        used, held = (slot.used_slots, slot.slots) if slot is not None else (0, 0)
        return max(0, min(MAX_SLOTS, max(self.min_slots, 2 * used) - held))

    def _refill(self, subject: Subject, key: uuid.UUID, amount: Decimal) -> None:
        if subject in self._refilling or not self.book.trusted:
            return
        refused = self._refused.get(subject)
        if refused is not None:
            if time.monotonic() < refused:
                return  # small limits or near one: per request, without a refill each time
            del self._refused[subject]
        self._refilling.add(subject)
        task = asyncio.create_task(self._run_refill(subject, key, amount), name="lease-refill")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_refill(self, subject: Subject, key: uuid.UUID, amount: Decimal) -> None:
        try:
            async with self._engine.connect() as conn:
                began = time.monotonic()
                await self._refill_once(conn, subject, key, amount)
                took = time.monotonic() - began
                self._latency_s = 0.7 * self._latency_s + 0.3 * took
                if subject.end_user_id is not None:
                    slot = self.book.leases.get(subject.tenant)
                    money = self.book.leases.get(subject)
                    if money is not None and money.escrow > 0 and _slots_short(slot):
                        await self._top_up_slots(conn, subject.tenant)
        except DB_ERRORS as exc:
            self._on_refill("error")
            log.info("lease refill failed (%s); requests reserve per request", type(exc).__name__)
        except Exception:
            self._on_refill("error")
            log.exception("lease refill failed")
        finally:
            self._refilling.discard(subject)

    async def _refill_once(
        self, conn: Any, subject: Subject, key: uuid.UUID, amount: Decimal
    ) -> None:
        """Ask only for what is short: money and permits up to the demand over the horizon
        (money: at least twice the minimum grant), slots up to twice the requests in flight; a
        lease that does not need a part gets none of it (nothing piles up)."""
        book = self.book
        money = book.leases.get(subject)
        min_usd = amount * self.min_worst_cases
        want_usd = ZERO
        if self._money_short(money, amount):
            rate = self._demand_of(subject).usd_per_s(time.monotonic())
            target = max(
                book.want(
                    subject, amount, horizon_s=self.horizon_s, floor=2 * self.min_worst_cases
                ),
                (rate * Decimal(str(self.horizon_s))).quantize(Decimal("0.000001")),
            )
            held = money.available if money is not None else ZERO
            want_usd = max(target - held, min_usd)
        slot = book.leases.get(subject.tenant)
        want_slots = self._slots_wanted(slot) if subject.end_user_id is None else 0
        want_permits = self._permits_wanted(key)
        refill = await book.refill_for(
            conn,
            subject,
            key=key,
            want_usd=want_usd,
            min_usd=min_usd,
            want_slots=want_slots,
            min_slots=self.min_slots,
            want_permits=want_permits,
            min_rpm=self.min_rpm,
        )
        self.refills += 1
        if refill is None:
            self._on_refill("untrusted")
            return
        if refill.lost:
            self._on_refill("lost")
            return
        granted = bool(refill.usd or refill.slots or refill.permits)
        self._on_refill("granted" if granted else "none")
        if subject.end_user_id is not None:
            has_budget = refill.standing.user_budget is not None
            self._know_user(subject.tenant_id, subject.end_user_id, has_budget)
        lease = book.leases.get(subject)
        asked = want_usd > 0 or want_slots > 0 or want_permits > 0
        if (asked and not granted) or (want_usd > 0 and refill.usd == 0):
            self._refused[subject] = time.monotonic() + REFUSED_BACKOFF_S
        if want_usd > 0 and refill.usd == 0 and lease is not None and lease.exists:
            # Refused money (near the limit, or small limits): what this lease still holds
            # beyond its requests in flight goes back, so the per-request path can use it.
            await book.give_back(conn, lease)

    async def _top_up_slots(self, conn: Any, tenant: Subject) -> None:
        lease = self.book.leases.get(tenant)
        await self.book.refill_for(
            conn,
            tenant,
            key=None,
            want_usd=ZERO,
            min_usd=ZERO,
            want_slots=self._slots_wanted(lease),
            min_slots=self.min_slots,
            want_permits=0,
            min_rpm=self.min_rpm,
        )

    # -- idle returns and shutdown -----------------------------------------------------------

    def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick(), name="lease-returns")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(max(self.idle_s / 3, 0.5))
            try:
                self.book.trusted  # noqa: B018 - retires every lease once the heartbeat is late
                if any(lease.exists for lease in [*self.book.retired, *self.book.leases.values()]):
                    async with self._engine.connect() as conn:  # only when there is a lease
                        await self.book.return_idle(conn, self.idle_s)
                now = time.monotonic()
                for user, (_, until) in list(self._users.items()):
                    if until < now:
                        del self._users[user]
                for tenant, until_s in list(self._roomy.items()):
                    if until_s < now:
                        del self._roomy[tenant]
                for subject, until_s in list(self._refused.items()):
                    if until_s < now:
                        del self._refused[subject]
                for user, hits in list(self._hits.items()):
                    if not hits or hits[-1] < now - ACTIVE_WINDOW_S:
                        del self._hits[user]
            except DB_ERRORS:
                pass  # the leases stay until the database answers (or the reaper takes them)
            except Exception:
                log.exception("lease return failed")

    async def stop(self) -> None:
        """Give back everything not covering a request in flight (after the pumps settled and
        their settlements landed)."""
        if self.hits or self.misses:
            log.info(
                "lease admission: %d admitted from leases, %d reserved per request (%s), "
                "%d refills, refill round trip %.1f ms",
                self.hits,
                sum(self.misses.values()),
                ", ".join(f"{why}: {n}" for why, n in self.misses.most_common()) or "-",
                self.refills,
                1000 * self._latency_s,
            )
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            async with asyncio.timeout(10), self._engine.connect() as conn:
                await self.book.return_all(conn)
        except (TimeoutError, *DB_ERRORS):  # type: ignore[misc]
            log.warning("leases not returned at shutdown; the reaper returns them")


def _slots_short(slot: Lease | None) -> bool:
    """Fewer free slots than half the requests in flight (at least 4)."""
    return slot is None or slot.slots - slot.used_slots < max(4, slot.used_slots // 2)


@dataclass
class Demand:
    """What requests asked of one lease (or one key's permits) recently, admitted from it or
    not: requests and dollars per second over the last whole second, or over the current one
    when that is higher already (a ramp shows at once)."""

    start: float = 0.0
    count: int = 0
    usd: Decimal = ZERO
    last_count: int = 0
    last_usd: Decimal = ZERO

    def add(self, now: float, usd: Decimal) -> None:
        self._turn(now)
        self.count += 1
        self.usd += usd

    def _turn(self, now: float) -> None:
        if now - self.start >= 1.0:
            fresh = now - self.start < 2.0
            self.last_count = self.count if fresh else 0
            self.last_usd = self.usd if fresh else ZERO
            self.start, self.count, self.usd = now, 0, ZERO

    def per_s(self, now: float) -> float:
        self._turn(now)
        return max(float(self.last_count), self.count / max(now - self.start, 0.25))

    def usd_per_s(self, now: float) -> Decimal:
        self._turn(now)
        elapsed = Decimal(str(round(max(now - self.start, 0.25), 3)))
        return max(self.last_usd, self.usd / elapsed)


def _standing(ticket: Ticket) -> Reservation:
    """Where the tenant stands, for the quota headers of a lease-admitted request: as of the
    last refill, with this process's unused slice and free slots not counted as used."""
    money, slot = ticket.money, ticket.slot
    st = money.standing or slot.standing
    assert st is not None
    reserved = max(st.reserved - money.available, ZERO)
    in_flight = max(st.in_flight - (slot.slots - slot.used_slots), 0)
    return Reservation(
        outcome="ok",
        retry_after=0,
        budget=st.budget,
        spent=st.spent,
        reserved=reserved,
        rpm=st.rpm,
        rpm_used=None,
        concurrency=st.concurrency,
        in_flight=in_flight,
        user_budget=st.user_budget,
        user_spent=st.user_spent,
    )
