"""Prometheus metrics of one app: one `CollectorRegistry` per app, created in its lifespan and
reached through `AppState.metrics` (never the global default registry, so many apps can run in
one process, as the tests do). `GET /metrics` serves it.

Every update is O(1) per request — at the quota decision and at the settlement, never per
chunk — and label sets are small and bounded: endpoint (`chat`, `messages`,
`chat_completions`), ledger status, model (only priced models get this far), token kind, quota
kind, and upstream error type (folded to a known list).

Each server process has its own registry: with `tollgate serve --workers N` a scrape reaches one
worker. The ledger (`GET /admin/usage`) is the exact, global record; these are for monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from api.ledger.functions import Settlement

__all__ = ["QUOTA_KINDS", "TOKEN_KINDS", "Metrics"]

TOKEN_KINDS = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
QUOTA_KINDS = ("budget", "user_budget", "rate", "concurrency")
REJECTED = "rejected"
"""The `status` of a request refused by a quota (402/429) in `tollgate_requests_total`."""

_ERROR_STATUSES = frozenset({"upstream_error", "timeout"})
_KNOWN_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
        "api_connection_error",
        "unknown_error",
    }
)
_TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass(frozen=True, slots=True)
class _ModelSeries:
    """The labelled children of one model, looked up once (`labels()` takes a lock)."""

    tokens: tuple[Counter, ...]  # in TOKEN_KINDS order
    cost: Counter
    ttft: Histogram
    duration: Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "tollgate_requests",
            "Metered requests by endpoint and outcome: the ledger status, or 'rejected' "
            "for a quota refusal (402/429)",
            ("endpoint", "status"),
            registry=r,
        )
        self.tokens = Counter(
            "tollgate_tokens",
            "Tokens metered, by model and kind",
            ("model", "kind"),
            registry=r,
        )
        self.cost = Counter(
            "tollgate_cost_usd",
            "Metered cost in USD (a float, for monitoring; the ledger holds the exact amount)",
            ("model",),
            registry=r,
        )
        self.ttft = Histogram(
            "tollgate_time_to_first_token_seconds",
            "From the quota check to the upstream stream's first bytes",
            ("model",),
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "tollgate_request_duration_seconds",
            "From the quota check to the settlement of the ledger row",
            ("model",),
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "tollgate_upstream_errors",
            "Requests that ended in an upstream error or timeout, by error type",
            ("type",),
            registry=r,
        )
        self.quota_rejections = Counter(
            "tollgate_quota_rejections",
            "Requests refused before the upstream call, by the limit that refused them",
            ("kind",),
            registry=r,
        )
        self.unknown_model_fallbacks = Counter(
            "tollgate_unknown_model_fallbacks",
            "Requests for a model the price book lacks, priced at its family's newest model "
            "(TOLLGATE_UNKNOWN_MODEL=family), by the model asked for",
            ("model",),
            registry=r,
        )
        self.reservations_in_flight = Gauge(
            "tollgate_reservations_in_flight",
            "Requests admitted by the quota check and not yet settled (this process)",
            registry=r,
        )
        self.shed = Counter(
            "tollgate_shed_requests",
            "Requests refused because the database was busy (529, reason 'busy') or could not "
            "be reached (503, reason 'down'); nothing was sent upstream",
            ("reason",),
            registry=r,
        )
        self.lease_refills = Counter(
            "tollgate_lease_refills",
            "Budget/slot/permit lease refills taken from Postgres by this process, by result",
            ("result",),
            registry=r,
        )
        self.lease_admissions = Counter(
            "tollgate_lease_admissions",
            "Requests that came to this process's leases: admitted from one (lease), or sent to "
            "the per-request reserve, by why (money, slots, permits, untrusted, no slot lease)",
            ("result",),
            registry=r,
        )
        self.journal_depth = Gauge(
            "tollgate_journal_depth",
            "Ledger records in the local journal (the spool) not yet in Postgres",
            registry=r,
        )
        self.orphans_released = Gauge(
            "tollgate_orphans_released_total",
            "In-flight rows voided by this process because their reserve committed after the "
            "request had been refused (nothing reached the upstream)",
            registry=r,
        )
        self._rejections = {kind: self.quota_rejections.labels(kind) for kind in QUOTA_KINDS}
        self._models: dict[str, _ModelSeries] = {}
        self._requests: dict[tuple[str, str], Counter] = {}
        self._errors: dict[str, Counter] = {}

    def reservation(self, endpoint: str, outcome: str) -> None:
        """The quota decision for one request: `ok`, or the kind of limit that refused it."""
        if outcome == "ok":
            self.reservations_in_flight.inc()
            return
        rejections = self._rejections.get(outcome)
        if rejections is None:
            rejections = self._rejections[outcome] = self.quota_rejections.labels(outcome)
        rejections.inc()
        self._requests_of(endpoint, REJECTED).inc()

    def settled(
        self, endpoint: str, settlement: Settlement, *, duration_s: float, ttft_s: float | None
    ) -> None:
        """An admitted request's final ledger row (written or spooled)."""
        self.reservations_in_flight.dec()
        status = settlement.status
        self._requests_of(endpoint, status).inc()
        series = self._series(settlement.model)
        counts = (
            settlement.input_tokens,
            settlement.output_tokens,
            settlement.cache_write_5m_tokens,
            settlement.cache_write_1h_tokens,
            settlement.cache_read_tokens,
        )
        for counter, count in zip(series.tokens, counts, strict=True):
            if count:
                counter.inc(count)
        if settlement.cost_usd:
            series.cost.inc(float(settlement.cost_usd))
        if ttft_s is not None:
            series.ttft.observe(ttft_s)
        series.duration.observe(duration_s)
        if status in _ERROR_STATUSES:
            error_type = settlement.error_type or (
                "timeout_error" if status == "timeout" else "unknown_error"
            )
            if error_type not in _KNOWN_ERROR_TYPES:
                error_type = "other"
            self._errors_of(error_type).inc()

    def _series(self, model: str) -> _ModelSeries:
        series = self._models.get(model)
        if series is None:
            series = _ModelSeries(
                tokens=tuple(self.tokens.labels(model, kind) for kind in TOKEN_KINDS),
                cost=self.cost.labels(model),
                ttft=self.ttft.labels(model),
                duration=self.duration.labels(model),
            )
            self._models[model] = series
        return series

    def _requests_of(self, endpoint: str, status: str) -> Counter:
        counter = self._requests.get((endpoint, status))
        if counter is None:
            counter = self._requests[endpoint, status] = self.requests.labels(endpoint, status)
        return counter

    def _errors_of(self, error_type: str) -> Counter:
        counter = self._errors.get(error_type)
        if counter is None:
            counter = self._errors[error_type] = self.upstream_errors.labels(error_type)
        return counter
