"""Who a tenant key belongs to (`Principal`), and the per-process cache of key lookups (short
TTL, so a revoked key stops working everywhere within seconds)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

_CACHE_MAX = 100_000  # known keys
_NEGATIVE_MAX = 10_000  # unknown or revoked keys: a flood of them never evicts a known one
_REFRESH_AHEAD = 4  # a known key is looked up again in the last 1/4 of its TTL, in the background
STALE_WHILE_DOWN_S = 60.0  # a known-good key past its TTL still works this long if Postgres is down


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant, the key, and the end user the key is bound to (if any)."""

    tenant_id: uuid.UUID
    key_id: uuid.UUID
    plan_code: str
    allowed_models: tuple[str, ...] | None
    bound_user_id: uuid.UUID | None
    bound_user: str | None
    # The subscription cycle, when billing set one; else budgets run per calendar month.
    billing_period: tuple[datetime, datetime] | None = None
    # The key's own policies. A key with a budget must always reserve per request through
    # tollgate_reserve (which checks it exactly), never against an escrow lease.
    key_models: tuple[str, ...] | None = None  # ids or patterns; None: what the plan allows
    key_budget_usd: Decimal | None = None
    expires_at: datetime | None = None  # 401 from then on
    revoke_at: datetime | None = None  # a scheduled revocation (rotation): invalid from then on

    @property
    def reserves_per_request(self) -> bool:
        """True when admission must take the exact per-request path (a key budget)."""
        return self.key_budget_usd is not None


@dataclass(frozen=True)
class KeyEntry:
    principal: Principal | None  # None: unknown or revoked
    suspended: bool
    expires: float


class KeyCache:
    """Least-recently-used caches of key lookups: known keys, and separately (smaller) unknown
    or revoked ones, so a flood of bad keys can only evict other bad keys."""

    def __init__(
        self, ttl_s: float, max_known: int = _CACHE_MAX, max_unknown: int = _NEGATIVE_MAX
    ) -> None:
        self.ttl_s = ttl_s
        self._known: OrderedDict[bytes, KeyEntry] = OrderedDict()
        self._unknown: OrderedDict[bytes, KeyEntry] = OrderedDict()
        self._max = {True: max_known, False: max_unknown}
        self._loading: dict[bytes, asyncio.Future[KeyEntry]] = {}

    async def load(self, key_hash: bytes, lookup: Callable[[], Awaitable[KeyEntry]]) -> KeyEntry:
        """The entry of a key not in the cache: one lookup per key at a time, so the requests
        that arrive while it runs (a busy key whose entry just expired) wait for the same answer
        instead of sending one statement each. Its error (503) goes to all of them."""
        pending = self._loading.get(key_hash)
        if pending is None:
            pending = self._start(key_hash, lookup)
        return await asyncio.shield(pending)

    def refresh_ahead(
        self, key_hash: bytes, entry: KeyEntry, lookup: Callable[[], Awaitable[KeyEntry]]
    ) -> None:
        """A known key whose entry expires soon is looked up again in the background, so a busy
        key never finds its entry expired (the entry in hand still expires at its time: a
        revocation takes effect within the TTL as before)."""
        if key_hash in self._loading or entry.expires - time.monotonic() > self.ttl_s / (
            _REFRESH_AHEAD
        ):
            return
        task = self._start(key_hash, lookup)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retried on expiry

    def _start(
        self, key_hash: bytes, lookup: Callable[[], Awaitable[KeyEntry]]
    ) -> asyncio.Future[KeyEntry]:
        async def run() -> KeyEntry:
            try:
                entry = await lookup()
                self.put(key_hash, entry)
                return entry
            finally:
                self._loading.pop(key_hash, None)

        task = self._loading[key_hash] = asyncio.ensure_future(run())
        return task

    def get(self, key_hash: bytes) -> KeyEntry | None:
        for entries in (self._known, self._unknown):
            entry = entries.get(key_hash)
            if entry is None:
                continue
            if entry.expires < time.monotonic():
                if entries is self._unknown or self.ttl_s <= 0:
                    del entries[key_hash]  # a known key stays for `stale_known` (LRU-bounded)
                return None
            entries.move_to_end(key_hash)
            return entry
        return None

    def stale_known(self, key_hash: bytes) -> KeyEntry | None:
        """A known-good key's entry past its TTL, for at most STALE_WHILE_DOWN_S more: what the
        caller may use while Postgres cannot be reached (no revocation can commit meanwhile;
        one committed within the TTL before the outage applies once it is back)."""
        entry = self._known.get(key_hash)
        if entry is None or time.monotonic() > entry.expires + STALE_WHILE_DOWN_S:
            return None
        return entry

    def put(self, key_hash: bytes, entry: KeyEntry) -> None:
        known = entry.principal is not None
        entries, other = (self._known, self._unknown) if known else (self._unknown, self._known)
        other.pop(key_hash, None)
        entries[key_hash] = entry
        entries.move_to_end(key_hash)
        while len(entries) > self._max[known]:
            entries.popitem(last=False)

    def __contains__(self, key_hash: bytes) -> bool:
        return key_hash in self._known or key_hash in self._unknown

    def clear(self) -> None:
        self._known.clear()
        self._unknown.clear()
