"""Observe an Anthropic Messages response and keep its usage, without touching the bytes.

Only ``message_start``, ``message_delta``, ``message_stop`` and ``error`` are looked at; every
other event is dropped by name before any JSON parsing. Usage rules:

* ``message_start.message.usage`` sets input, cache-write (5 min / 1 h split from
  ``cache_creation``), cache-read and output tokens, ``server_tool_use.web_search_requests``
  ``inference_geo`` and ``speed``.
* Every ``message_delta.usage`` is CUMULATIVE: each field present and non-null overwrites the
  value held (server tools can raise input and cache tokens mid-stream); nulls are ignored.
* ``cache_creation_input_tokens`` is the authority for the cache-write total: the 1 h part
  comes from ``cache_creation.ephemeral_1h_input_tokens`` and the rest counts as 5 min (so with
  no split everything is 5 min, the cheaper and more common case).
* A malformed event never raises: it is counted in ``parse_errors`` and skipped (a malformed
  ``error`` event still marks the response as failed, with type ``"unknown_error"``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from api.metering.sse import SSEScanner
from api.pricing.cost import Usage

__all__ = ["METERED_EVENTS", "UsageMeter", "text_of_delta"]

_MESSAGE_START = b"message_start"
_MESSAGE_DELTA = b"message_delta"
_MESSAGE_STOP = b"message_stop"
_ERROR = b"error"
METERED_EVENTS = frozenset({_MESSAGE_START, _MESSAGE_DELTA, _MESSAGE_STOP, _ERROR})
"""The only SSE event names the meter parses."""

_UNKNOWN_ERROR = "unknown_error"
_COUNTERS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_read_input_tokens", "cache_read_tokens"),
)


class UsageMeter:
    """Usage, model and outcome of one Messages response (streamed or not)."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.model: str | None = None
        self.message_id: str | None = None
        self.stop_reason: str | None = None
        self.saw_message_start = False
        self.saw_message_stop = False
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.parse_errors = 0
        self._scanner = SSEScanner(only=METERED_EVENTS)

    @property
    def complete(self) -> bool:
        """The response ended normally: ``message_stop`` seen and no ``error`` event."""
        return self.saw_message_stop and self.error_type is None

    @property
    def has_partial(self) -> bool:
        """The raw stream fed to :meth:`observe` stopped in the middle of an event."""
        return self._scanner.has_partial

    def observe(self, chunk: bytes) -> None:
        """Feed raw SSE bytes exactly as relayed to the client (any chunking)."""
        for name, data in self._scanner.feed(chunk):
            self.observe_event(name, data)

    def observe_event(self, name: bytes, data: bytes) -> None:
        """Handle one already-split SSE event; names other than METERED_EVENTS are ignored."""
        if name == _MESSAGE_DELTA:
            self._on_message_delta(data)
        elif name == _MESSAGE_START:
            self._on_message_start(data)
        elif name == _MESSAGE_STOP:
            self.saw_message_stop = True
        elif name == _ERROR:
            self._on_error(data)

    def observe_message(self, msg: Mapping[str, object]) -> None:
        """Take usage, model, id and stop reason from a NON-streaming response body."""
        if msg.get("type") == "error":
            self._record_error(msg)
            return
        self.saw_message_start = True
        self._take_message_fields(msg)
        stop_reason = msg.get("stop_reason")
        if isinstance(stop_reason, str):
            self.stop_reason = stop_reason
        self.saw_message_stop = True

    def _on_message_start(self, data: bytes) -> None:
        event = self._load(data)
        if event is None:
            return
        message = event.get("message")
        if not isinstance(message, dict):
            self.parse_errors += 1
            return
        self.saw_message_start = True
        self._take_message_fields(message)

    def _on_message_delta(self, data: bytes) -> None:
        event = self._load(data)
        if event is None:
            return
        delta = event.get("delta")
        if isinstance(delta, dict):
            stop_reason = delta.get("stop_reason")
            if isinstance(stop_reason, str):
                self.stop_reason = stop_reason
        usage = event.get("usage")
        if isinstance(usage, dict):
            _apply_usage(self.usage, usage)

    def _on_error(self, data: bytes) -> None:
        event = self._load(data)
        if event is None:
            self.error_type = _UNKNOWN_ERROR
            return
        self._record_error(event)

    def _record_error(self, body: Mapping[str, object]) -> None:
        error = body.get("error")
        error_type: object = None
        message: object = None
        if isinstance(error, dict):
            error_type = error.get("type")
            message = error.get("message")
        self.error_type = error_type if isinstance(error_type, str) else _UNKNOWN_ERROR
        self.error_message = message if isinstance(message, str) else None

    def _take_message_fields(self, message: Mapping[str, object]) -> None:
        model = message.get("model")
        if isinstance(model, str):
            self.model = model
        message_id = message.get("id")
        if isinstance(message_id, str):
            self.message_id = message_id
        usage = message.get("usage")
        if isinstance(usage, dict):
            _apply_usage(self.usage, usage)

    def _load(self, data: bytes) -> dict[str, object] | None:
        try:
            value: object = json.loads(data)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            self.parse_errors += 1
            return None
        if not isinstance(value, dict):
            self.parse_errors += 1
            return None
        return value


def text_of_delta(data: bytes) -> str | None:
    """The text of a ``content_block_delta`` event carrying a ``text_delta``, else None."""
    if b"text_delta" not in data:
        return None
    try:
        event: object = json.loads(data)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("type") != "content_block_delta":
        return None
    delta = event.get("delta")
    if not isinstance(delta, dict) or delta.get("type") != "text_delta":
        return None
    text = delta.get("text")
    return text if isinstance(text, str) else None


def _apply_usage(usage: Usage, raw: Mapping[str, object]) -> None:
    """Overwrite every counter present and non-null in an API ``usage`` object."""
    for api_name, attr in _COUNTERS:
        value = _count(raw.get(api_name))
        if value is not None:
            setattr(usage, attr, value)
    split = raw.get("cache_creation")
    if isinstance(split, dict):
        five_min = _count(split.get("ephemeral_5m_input_tokens"))
        one_hour = _count(split.get("ephemeral_1h_input_tokens"))
        if five_min is not None:
            usage.cache_write_5m_tokens = five_min
        if one_hour is not None:
            usage.cache_write_1h_tokens = one_hour
    total = _count(raw.get("cache_creation_input_tokens"))
    if total is not None:
        one_hour = min(usage.cache_write_1h_tokens, total)
        usage.cache_write_1h_tokens = one_hour
        usage.cache_write_5m_tokens = total - one_hour
    tools = raw.get("server_tool_use")
    if isinstance(tools, dict):
        searches = _count(tools.get("web_search_requests"))
        if searches is not None:
            usage.web_search_requests = searches
    geo = raw.get("inference_geo")
    if isinstance(geo, str):
        usage.inference_geo = geo
    speed = raw.get("speed")
    if isinstance(speed, str):
        usage.speed = speed


def _count(value: object) -> int | None:
    """A token counter from JSON: a non-negative int (not a bool), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
