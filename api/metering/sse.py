"""An incremental Server-Sent Events splitter over raw bytes.

It follows the HTML "event stream" parsing rules for the parts a meter needs: lines end with
CRLF, LF or CR (a CRLF split across two chunks counts once); a blank line dispatches the event;
``data:`` lines are joined with ``\\n``; one space after the colon is dropped; lines starting
with ``:`` are comments; the event name defaults to ``message``; an event with no ``data`` line
is not dispatched; ``id`` and ``retry`` are ignored; a leading UTF-8 BOM is dropped (when it
arrives whole in the first chunk). An event that is not followed by a blank line before the
stream ends is never dispatched.

Fast path: each chunk is scanned once with ``bytes.find`` (C speed) for the ``\\n\\n`` event
separator; only the incomplete tail is kept, as a list of pieces joined once a separator
arrives, so an event split into many small chunks costs O(size) overall. With ``only=`` the
scanner skips unwanted events from their ``event:`` line without assembling their data.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

__all__ = ["SSEEvent", "SSEScanner"]

SSEEvent = tuple[bytes, bytes]
"""(event name, data) of one dispatched event."""

_BOM = b"\xef\xbb\xbf"
_DEFAULT_NAME = b"message"


class SSEScanner:
    """Feed raw stream bytes; get back each complete (name, data) event once.

    ``only``: if given, events whose name is not in it are dropped (cheaply) instead of returned.
    """

    __slots__ = (
        "_ends_with_nl",
        "_only",
        "_pending",
        "_pending_cr",
        "_pending_len",
        "_prefixes",
        "_started",
    )

    def __init__(self, only: Iterable[bytes] | None = None) -> None:
        self._only: frozenset[bytes] | None = None if only is None else frozenset(only)
        self._prefixes = () if self._only is None else _event_line_prefixes(self._only)
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._ends_with_nl = False
        self._pending_cr = False
        self._started = False

    @property
    def has_partial(self) -> bool:
        """True when bytes of an unfinished event (anything but blank lines) are held."""
        return any(piece.strip(b"\n") for piece in self._pending)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk`` and return the events it completes, in stream order."""
        if not chunk:
            return []
        if self._pending_cr:
            # The previous chunk ended in CR, already counted as a line end: drop the LF of
            # a CRLF pair split across the boundary.
            self._pending_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._pending_cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not self._started:
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        if not chunk:
            return []
        pos = chunk.find(b"\n\n")
        across = self._ends_with_nl and chunk[0] == 0x0A  # "\n" | "\n" split by the chunking
        if pos == -1 and not across:
            self._pending.append(chunk)
            self._pending_len += len(chunk)
            self._ends_with_nl = chunk[-1] == 0x0A
            return []
        if self._pending:
            # The held tail never contains a separator, so the first one is at the seam or
            # inside the new chunk.
            offset = self._pending_len
            self._pending.append(chunk)
            chunk = b"".join(self._pending)
            self._pending = []
            self._pending_len = 0
            pos = offset - 1 if across else offset + pos
        return self._split(chunk, pos)

    def flush(self) -> list[SSEEvent]:
        """End of stream. Per the SSE spec an unterminated event is discarded, so this returns
        no event; check :attr:`has_partial` to learn whether the stream was cut mid-event."""
        return []

    def _split(self, buf: bytes, end: int) -> list[SSEEvent]:
        """Dispatch every complete event in ``buf``; ``end`` is its first separator."""
        events: list[SSEEvent] = []
        only = self._only
        wanted_prefixes = self._prefixes
        start = 0
        while end != -1:
            # Skip an unwanted event from its first line, without copying it: it opens with
            # an "event:" line that is not a wanted one, and no later line renames it.
            if end > start and (
                only is None
                or buf.startswith(wanted_prefixes, start)
                or not buf.startswith(b"event:", start)
                or buf.find(b"\nevent", start, end) != -1
            ):
                event = _parse_block(buf[start:end], only)
                if event is not None:
                    events.append(event)
            start = end + 2
            end = buf.find(b"\n\n", start)
        if start < len(buf):
            tail = buf[start:]
            self._pending.append(tail)
            self._pending_len = len(tail)
            self._ends_with_nl = tail[-1] == 0x0A
        else:
            self._ends_with_nl = True
        return events


@lru_cache(maxsize=32)
def _event_line_prefixes(names: frozenset[bytes]) -> tuple[bytes, ...]:
    """The first lines that announce a wanted event (with and without the optional space)."""
    return tuple(b"event:" + space + name + b"\n" for name in names for space in (b"", b" "))


def _parse_block(block: bytes, only: frozenset[bytes] | None) -> SSEEvent | None:
    """Parse the lines of one event (no blank line inside except possibly a leading one)."""
    name = _DEFAULT_NAME
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 0x3A:  # blank, or a ":" comment
            continue
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value
    if not data or (only is not None and name not in only):
        return None
    return name, data[0] if len(data) == 1 else b"\n".join(data)
