"""Knobs of the simulated upstream: server-wide defaults and per-request header overrides.

Every knob has a server default in `SimConfig` and may be overridden for one request by an
`x-sim-…` header (see `HEADER_FIELDS`). A bad header value is a client error that names the
header; an unknown `x-sim-…` header is rejected too, so a typo cannot silently do nothing.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

FailMode: TypeAlias = Literal["overloaded", "truncate", "hang"]
FAIL_MODES: frozenset[str] = frozenset(get_args(FailMode))

HEADER_PREFIX = "x-sim-"


class KnobError(ValueError):
    """A knob value is invalid; `header` names the request header it came from, if any."""

    def __init__(self, header: str, message: str) -> None:
        super().__init__(f"{header}: {message}")
        self.header = header
        self.message = message


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Server-level defaults for every knob of the simulated upstream.

    - `output_tokens`: text deltas to produce (capped by the request's `max_tokens`).
    - `ttft_ms`: delay before the first delta; `token_delay_ms`: delay between deltas.
    - `cache_read_tokens`, `cache_write_5m_tokens`, `cache_write_1h_tokens`: reported cache usage.
    - `web_search_requests`: reported `server_tool_use.web_search_requests` (omitted when 0).
    - `status`: answer every request with this HTTP error status (400-599) instead.
    - `fail` (messages only): `overloaded` (error event mid-stream), `truncate` (stream ends
      early, no `message_stop`) or `hang` (never answer until the client goes away).
    - `fail_after`: deltas sent before `fail` strikes (default: half of them).
    - `input_tokens`: report this input-token count instead of the computed one.
    - `tool_calls`: tool calls to end the answer with when the request has `tools` (a forced
      `tool_choice` makes at least one); see `extras.py`.

    Message Batches and Files (knobs read when a batch is created or a file uploaded):
    - `batch_duration_ms`: how long a batch stays `in_progress` (its requests finish evenly
      spread over it); `batch_cancel_ms`: how long a canceled batch stays `canceling`.
    - `batch_errored`, `batch_expired`: regular expressions; a request whose `custom_id`
      matches (`re.search`) gets an `errored` (`api_error`) or `expired` result.
    - `results_stall_after`: the batch's FIRST results download sends this many JSONL lines,
      then stalls (no more bytes) until the client hangs up; later downloads are whole.
    - `file_downloadable`: uploaded files can be downloaded (`downloadable: true`); the real
      API only allows downloading files its tools created, so the default is false.
    """

    output_tokens: int = 64
    ttft_ms: float = 0
    token_delay_ms: float = 0
    cache_read_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    web_search_requests: int = 0
    status: int | None = None
    fail: FailMode | None = None
    fail_after: int | None = None
    input_tokens: int | None = None
    tool_calls: int = 0
    batch_duration_ms: float = 0
    batch_cancel_ms: float = 0
    batch_errored: str | None = None
    batch_expired: str | None = None
    results_stall_after: int | None = None
    file_downloadable: bool = False

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None:
                _VALIDATORS[field.name](field.name, value)


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise KnobError(name, f"expected a non-negative integer, got {value!r}")


def _check_delay(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KnobError(name, f"expected a non-negative number of milliseconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise KnobError(name, f"expected a non-negative number of milliseconds, got {value!r}")


def _check_status(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
        raise KnobError(name, f"expected an HTTP error status between 400 and 599, got {value!r}")


def _check_fail(name: str, value: object) -> None:
    if value not in FAIL_MODES:
        raise KnobError(name, f"expected one of {', '.join(sorted(FAIL_MODES))}, got {value!r}")


def _check_pattern(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise KnobError(name, f"expected a regular expression, got {value!r}")
    try:
        re.compile(value)
    except re.error as exc:
        raise KnobError(name, f"not a valid regular expression: {exc}") from None


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise KnobError(name, f"expected true or false, got {value!r}")


_VALIDATORS: dict[str, Callable[[str, object], None]] = {
    "output_tokens": _check_count,
    "ttft_ms": _check_delay,
    "token_delay_ms": _check_delay,
    "cache_read_tokens": _check_count,
    "cache_write_5m_tokens": _check_count,
    "cache_write_1h_tokens": _check_count,
    "web_search_requests": _check_count,
    "status": _check_status,
    "fail": _check_fail,
    "fail_after": _check_count,
    "input_tokens": _check_count,
    "tool_calls": _check_count,
    "batch_duration_ms": _check_delay,
    "batch_cancel_ms": _check_delay,
    "batch_errored": _check_pattern,
    "batch_expired": _check_pattern,
    "results_stall_after": _check_count,
    "file_downloadable": _check_bool,
}


def _parse_int(header: str, raw: str) -> int:
    text = raw.strip()
    if not text.isascii() or not text.isdigit():
        raise KnobError(header, f"expected a non-negative integer, got {raw!r}")
    return int(text)


def _parse_ms(header: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise KnobError(
            header, f"expected a non-negative number of milliseconds, got {raw!r}"
        ) from None
    _check_delay(header, value)
    return value


def _parse_status(header: str, raw: str) -> int:
    value = _parse_int(header, raw)
    _check_status(header, value)
    return value


def _parse_fail(header: str, raw: str) -> str:
    value = raw.strip().lower()
    _check_fail(header, value)
    return value


def _parse_pattern(header: str, raw: str) -> str:
    _check_pattern(header, raw)
    return raw


def _parse_bool(header: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("1", "0", "true", "false"):
        raise KnobError(header, f"expected true or false, got {raw!r}")
    return value in ("1", "true")


_Parser: TypeAlias = Callable[[str, str], object]

# header name -> (SimConfig field, parser of the raw header value)
HEADER_FIELDS: dict[str, tuple[str, _Parser]] = {
    "x-sim-output-tokens": ("output_tokens", _parse_int),
    "x-sim-ttft-ms": ("ttft_ms", _parse_ms),
    "x-sim-token-delay-ms": ("token_delay_ms", _parse_ms),
    "x-sim-cache-read-tokens": ("cache_read_tokens", _parse_int),
    "x-sim-cache-write-5m-tokens": ("cache_write_5m_tokens", _parse_int),
    "x-sim-cache-write-1h-tokens": ("cache_write_1h_tokens", _parse_int),
    "x-sim-web-search-requests": ("web_search_requests", _parse_int),
    "x-sim-input-tokens": ("input_tokens", _parse_int),
    "x-sim-status": ("status", _parse_status),
    "x-sim-fail": ("fail", _parse_fail),
    "x-sim-fail-after": ("fail_after", _parse_int),
    "x-sim-tool-calls": ("tool_calls", _parse_int),
    "x-sim-batch-duration-ms": ("batch_duration_ms", _parse_ms),
    "x-sim-batch-cancel-ms": ("batch_cancel_ms", _parse_ms),
    "x-sim-batch-errored": ("batch_errored", _parse_pattern),
    "x-sim-batch-expired": ("batch_expired", _parse_pattern),
    "x-sim-results-stall-after": ("results_stall_after", _parse_int),
    "x-sim-file-downloadable": ("file_downloadable", _parse_bool),
}


def apply_header_overrides(base: SimConfig, headers: Mapping[str, str]) -> SimConfig:
    """Return the effective knobs for one request.

    `headers` maps lower-case `x-sim-…` header names to their values (other headers are
    ignored). Raises `KnobError` naming the header when a name is unknown or a value is bad.
    """
    overrides: dict[str, object] = {}
    for name, raw in headers.items():
        if not name.startswith(HEADER_PREFIX):
            continue
        entry = HEADER_FIELDS.get(name)
        if entry is None:
            known = ", ".join(HEADER_FIELDS)
            raise KnobError(name, f"unknown simulator header (known: {known})")
        field, parse = entry
        overrides[field] = parse(name, raw)
    if not overrides:
        return base
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]
