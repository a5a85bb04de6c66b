"""Who a tenant key belongs to (`Principal`), and the per-process cache of key lookups (short
TTL, so a revoked key stops working everywhere within seconds)."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

_CACHE_MAX = 100_000  # known keys
_NEGATIVE_MAX = 10_000  # unknown or revoked keys: a flood of them never evicts a known one


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

    def get(self, key_hash: bytes) -> KeyEntry | None:
        for entries in (self._known, self._unknown):
            entry = entries.get(key_hash)
            if entry is None:
                continue
            if entry.expires < time.monotonic():
                del entries[key_hash]
                return None
            entries.move_to_end(key_hash)
            return entry
        return None

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
