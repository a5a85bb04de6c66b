"""Who a tenant key belongs to (`Principal`), and the per-process cache of key lookups (short
TTL, so a revoked key stops working everywhere within seconds)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

_CACHE_MAX = 100_000


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


@dataclass(frozen=True)
class KeyEntry:
    principal: Principal | None  # None: unknown or revoked
    suspended: bool
    expires: float


class KeyCache:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[bytes, KeyEntry] = {}

    def get(self, key_hash: bytes) -> KeyEntry | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry.expires < time.monotonic():
            return None
        return entry

    def put(self, key_hash: bytes, entry: KeyEntry) -> None:
        if len(self._entries) >= _CACHE_MAX:
            self._entries.clear()
        self._entries[key_hash] = entry

    def clear(self) -> None:
        self._entries.clear()
