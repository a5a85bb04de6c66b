"""Simulated Message Batches: `in_progress` for a while, then `ended`, with a JSONL of results.

Timing: request i of n finishes at `created + duration * (i + 1) / n`; the batch ends when the
last one does. A cancel moves the batch to `canceling` for `cancel_s` seconds, then `ended`:
requests that had not finished when the cancel came are `canceled`. Results exist only once the
batch has ended. The outcome of each request is fixed at creation (see `BatchKnobs`): `errored`
or `expired` when its custom_id matches the knob's pattern, `errored` when its params are
invalid, else `succeeded` with a message and usage like `POST /v1/messages` would give.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from api.pagination import paginate

EXPIRY_S = 24 * 3600
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

MakeMessage = Callable[[bytes, str], dict[str, Any]]
"""(params as JSON bytes, message id) -> a Message; raises ValueError for invalid params."""


class BatchError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class BatchKnobs:
    """How one batch behaves (from `SimConfig` and the create request's `x-sim-batch-*`)."""

    duration_s: float = 0.0
    cancel_s: float = 0.0
    errored: re.Pattern[str] | None = None
    expired: re.Pattern[str] | None = None
    stall_after: int | None = None  # first results download stalls after this many lines


@dataclass
class _Request:
    custom_id: str
    result: dict[str, Any]  # the outcome if it gets to run


@dataclass
class SimBatch:
    id: str
    created: float
    requests: list[_Request]
    knobs: BatchKnobs
    cancel_at: float | None = None
    downloads: int = 0
    lines_served: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def natural_end(self) -> float:
        return self.created + self.knobs.duration_s

    def ended_at(self) -> float:
        if self.cancel_at is not None and self.cancel_at < self.natural_end():
            return self.cancel_at + self.knobs.cancel_s
        return self.natural_end()

    def finish_time(self, i: int) -> float:
        return self.created + self.knobs.duration_s * (i + 1) / len(self.requests)

    def status(self, now: float) -> str:
        if now >= self.ended_at():
            return "ended"
        return "canceling" if self.cancel_at is not None else "in_progress"

    def results(self) -> list[dict[str, Any]]:
        out = []
        for i, request in enumerate(self.requests):
            canceled = self.cancel_at is not None and self.finish_time(i) > self.cancel_at
            result = {"type": "canceled"} if canceled else request.result
            out.append({"custom_id": request.custom_id, "result": result})
        return out


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _error_result(error_type: str, message: str) -> dict[str, Any]:
    return {
        "type": "errored",
        "error": {"type": "error", "error": {"type": error_type, "message": message}},
    }


class SimBatches:
    """The batches of one simulator instance (in memory)."""

    def __init__(self, make_message: MakeMessage) -> None:
        self._make_message = make_message
        self._batches: dict[str, SimBatch] = {}

    def get(self, batch_id: str) -> SimBatch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise BatchError(404, f"message_batch {batch_id!r} not found")
        return batch

    def _outcome(self, custom_id: str, params: object, knobs: BatchKnobs) -> dict[str, Any]:
        if knobs.expired is not None and knobs.expired.search(custom_id):
            return {"type": "expired"}
        if knobs.errored is not None and knobs.errored.search(custom_id):
            return _error_result("api_error", "Simulated error for this batch request")
        try:
            raw = json.dumps(params).encode()
            message = self._make_message(raw, f"msg_sim_{secrets.token_hex(12)}")
        except ValueError as exc:
            return _error_result("invalid_request_error", str(exc))
        return {"type": "succeeded", "message": message}

    def create(self, body: object, knobs: BatchKnobs) -> SimBatch:
        if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            raise BatchError(400, "requests: Field required (a list)")
        requests: list[_Request] = []
        seen: set[str] = set()
        for i, entry in enumerate(body["requests"]):
            custom_id = entry.get("custom_id") if isinstance(entry, dict) else None
            if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
                raise BatchError(400, f"requests.{i}.custom_id: 1-64 of [a-zA-Z0-9_-]")
            if custom_id in seen:
                raise BatchError(400, f"requests.{i}.custom_id: {custom_id!r} is not unique")
            if not isinstance(entry.get("params"), dict):
                raise BatchError(400, f"requests.{i}.params: Field required")
            seen.add(custom_id)
            requests.append(_Request(custom_id, self._outcome(custom_id, entry["params"], knobs)))
        if not requests:
            raise BatchError(400, "requests: must not be empty")
        batch = SimBatch(f"msgbatch_sim_{secrets.token_hex(12)}", time.time(), requests, knobs)
        self._batches[batch.id] = batch
        return batch

    def cancel(self, batch_id: str) -> SimBatch:
        batch = self.get(batch_id)
        now = time.time()
        if batch.cancel_at is None and batch.status(now) == "in_progress":
            batch.cancel_at = now
        return batch

    def delete(self, batch_id: str) -> dict[str, str]:
        batch = self.get(batch_id)
        if batch.status(time.time()) != "ended":
            raise BatchError(400, "Message batches must be ended before they can be deleted")
        del self._batches[batch_id]
        return {"id": batch_id, "type": "message_batch_deleted"}

    def listing(self, query: Mapping[str, str], base_url: str) -> dict[str, Any]:
        newest = sorted(self._batches.values(), key=lambda b: b.created, reverse=True)
        return paginate([self.to_json(b, base_url) for b in newest], query)

    def to_json(self, batch: SimBatch, base_url: str) -> dict[str, Any]:
        now = time.time()
        status = batch.status(now)
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if status == "ended":
            for line in batch.results():
                counts[line["result"]["type"]] += 1
        else:
            counts["processing"] = len(batch.requests)
        ended = status == "ended"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "ended_at": _iso(batch.ended_at()) if ended else None,
            "created_at": _iso(batch.created),
            "expires_at": _iso(batch.created + EXPIRY_S),
            "archived_at": None,
            "cancel_initiated_at": _iso(batch.cancel_at),
            "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def result_lines(self, batch_id: str) -> tuple[SimBatch, list[bytes], int | None]:
        """The JSONL lines of an ended batch, and where the first download stalls (if set)."""
        batch = self.get(batch_id)
        if batch.status(time.time()) != "ended":
            raise BatchError(400, f"Message batch {batch_id} has not finished processing")
        batch.downloads += 1
        stall = batch.knobs.stall_after if batch.downloads == 1 else None
        lines = [
            (json.dumps(line, separators=(",", ":")) + "\n").encode() for line in batch.results()
        ]
        return batch, lines, stall


def _jsonl(line: dict[str, Any]) -> bytes:
    return (json.dumps(line, separators=(",", ":")) + "\n").encode()
