"""The fake's state: every entity by id, a settable clock, and the events it has emitted.

One re-entrant lock guards it all: the HTTP handlers run in the server's thread, the test
controls in the test's thread. Entities are stored in the shape the API renders them and are
deep-copied on the way out, so nobody holds a live reference into the state.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.razorpay.entities import new_id
from tests.fakes.razorpay.errors import ID_NOT_FOUND, ApiError, Json, as_int, reject_extra
from tests.fakes.razorpay.events import EventQuirks


@dataclass
class SubState:
    """What Razorpay tracks about a subscription without showing it."""

    anchor: int | None = None  # start of the first billing cycle
    cycle: int = 0  # index of the current cycle, counted from `anchor`
    cycle_paid: bool = False  # the current cycle's invoice has been paid
    open_invoice_id: str | None = None  # the current cycle's unpaid invoice
    cancel_at_cycle_end: bool = False
    scheduled: Json = field(default_factory=dict)  # an update waiting for the cycle's end


class Store:
    def __init__(self, *, base_url: str, now: int, strict: bool = True) -> None:
        self.lock = threading.RLock()
        self.base_url = base_url
        self.now = now
        self.strict = strict
        self.account_id = new_id("acc")
        self.quirks = EventQuirks()
        self.clear()

    def clear(self) -> None:
        """Forget every entity and event (the clock, account and quirks stay)."""
        with self.lock:
            self.plans: dict[str, Json] = {}
            self.customers: dict[str, Json] = {}
            self.subscriptions: dict[str, Json] = {}
            self.sub_state: dict[str, SubState] = {}
            self.addons: dict[str, Json] = {}
            self.invoices: dict[str, Json] = {}
            self.payments: dict[str, Json] = {}
            self.events: list[Json] = []

    def move_clock_to(self, when: int | None) -> None:
        """Razorpay acts at `when`: the clock moves forward to it, never back."""
        if when is not None and when > self.now:
            self.now = when

    def check_fields(self, data: Mapping[str, Any], allowed: Iterable[str]) -> None:
        """Unknown fields are rejected, as the real API does (unless the fake is lenient)."""
        if self.strict:
            reject_extra(data, allowed)

    def short_url(self, entity_id: str) -> str:
        return f"{self.base_url}/pay/{entity_id}"


def find(table: Mapping[str, Json], entity_id: str) -> Json:
    found = table.get(entity_id)
    if found is None:
        raise ApiError(ID_NOT_FOUND, metadata={})
    return found


def snapshot(entity: Json) -> Json:
    return copy.deepcopy(entity)


def collection(
    store: Store,
    entities: Iterable[Json],
    query: Mapping[str, str],
    *,
    filters: tuple[str, ...] = (),
) -> Json:
    """A Razorpay collection: newest first, `count` (default 10, at most 100), `skip`, and
    `from`/`to` bounds (inclusive) on `created_at`, plus equality `filters`."""
    store.check_fields(query, ("count", "skip", "from", "to", *filters))
    count = as_int(query, "count", default=10, minimum=1, maximum=100)
    skip = as_int(query, "skip", default=0, minimum=0)
    start = as_int(query, "from", minimum=0)
    end = as_int(query, "to", minimum=0)
    assert count is not None and skip is not None
    chosen = [
        entity
        for entity in reversed(list(entities))  # newest first; sorted() below keeps ties so
        if (start is None or entity["created_at"] >= start)
        and (end is None or entity["created_at"] <= end)
        and all(entity.get(name) == query[name] for name in filters if name in query)
    ]
    chosen = sorted(chosen, key=lambda entity: entity["created_at"], reverse=True)
    page = chosen[skip : skip + count]
    return {"entity": "collection", "count": len(page), "items": [snapshot(e) for e in page]}
