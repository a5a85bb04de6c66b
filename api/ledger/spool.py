"""The local journal of ledger records not yet in Postgres (the spool).

Two writers share one directory and one replay:

* `append`: one JSON line, fsynced before it returns, to `OWNER.jsonl` (kept for records that
  must be durable on their own);
* the journal (`journal`, `sync`, `landed`): the batcher (api/ledger/batcher.py) writes every
  lease-admitted start record before the request goes upstream and every settlement, with
  `os.write` and no fsync per record (the page cache survives a kill -9 of the process), to
  segments `OWNER.jN.journal`; `sync` fsyncs them once per flush (a power loss can lose at most
  the records of one flush interval). A segment is closed after about a second and deleted
  once every record in it has landed in Postgres.

Each file is named after the process that wrote it. A drainer claims a file by renaming it
(atomic), replays each record (starts are idempotent by request id and settling only touches a
row in flight, so a replay after a crash mid-drain counts once) and deletes it.
Another process's file is claimed when that process closed it (a graceful stop with the
database still down renames it `*.closed.jsonl`), when its writer is a dead process on this
host, or once it has been quiet for `stale_after_s`."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Spool:
    def __init__(
        self,
        directory: Path,
        owner: str,
        stale_after_s: float = 30.0,
        *,
        segment_s: float = 1.0,
        segment_bytes: int = 4 << 20,
    ) -> None:
        self.directory = directory
        self.owner = owner
        self.stale_after_s = stale_after_s
        self._lock = threading.Lock()
        self._claims = 0
        self._segment_s = segment_s
        self._segment_bytes = segment_bytes
        self._segments = 0
        self._current: _Segment | None = None
        self._closed: dict[int, _Segment] = {}  # closed, not yet deleted
        self._unsynced: list[_Segment] = []
        self.journaled = 0  # records in journal segments not yet landed

    # -- the journal -------------------------------------------------------------------------

    def journal(self, record: dict[str, Any]) -> int:
        """Write one record to the current segment without fsync; its segment's number (hand
        it to `landed` once the record is in Postgres). Runs on the event loop: one write."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        segment = self._current
        now = time.monotonic()
        if segment is None or now >= segment.until or segment.size >= self._segment_bytes:
            segment = self._rotate(now)
        os.write(segment.fd, line)
        segment.size += len(line)
        segment.outstanding += 1
        segment.dirty = True
        self.journaled += 1
        return segment.number

    def _rotate(self, now: float) -> _Segment:
        old = self._current
        if old is not None:
            self._close_segment(old)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segments += 1
        path = self.directory / f"{self.owner}.j{self._segments}.journal"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        segment = _Segment(self._segments, path, fd, now + self._segment_s)
        with self._lock:
            self._current = segment
            self._unsynced.append(segment)
        return segment

    def _close_segment(self, segment: _Segment) -> None:
        self._current = None if self._current is segment else self._current
        segment.open = False
        self._closed[segment.number] = segment
        if segment.outstanding == 0:
            self._delete(segment)

    def sync(self) -> None:
        """fsync every segment written since the last sync (blocking: a worker thread). The
        group fsync of one flush."""
        with self._lock:
            pending, self._unsynced = self._unsynced, []
            if self._current is not None and self._current not in pending:
                pending.append(self._current)
        for segment in pending:
            if segment.dirty or not segment.open:
                segment.dirty = False
                with contextlib.suppress(OSError):  # closed meanwhile: nothing left to protect
                    os.fsync(segment.fd)

    def landed(self, numbers: list[int]) -> None:
        """Records of these segments (one number per record) are in Postgres."""
        for number in numbers:
            segment = self._closed.get(number)
            if segment is None and self._current is not None and self._current.number == number:
                segment = self._current
            if segment is None:
                continue
            segment.outstanding -= 1
            self.journaled -= 1
            if not segment.open and segment.outstanding == 0:
                self._delete(segment)
        current = self._current
        if current is not None and current.outstanding == 0 and time.monotonic() >= current.until:
            self._close_segment(current)

    def _delete(self, segment: _Segment) -> None:
        self._closed.pop(segment.number, None)
        with self._lock:  # never while `sync` is about to fsync it
            if segment in self._unsynced:
                self._unsynced.remove(segment)
            with contextlib.suppress(OSError):
                os.close(segment.fd)
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()  # gone already if another process claimed it

    def close_journal(self) -> None:
        """Close every segment's file (shutdown); records not landed stay on disk."""
        for segment in [*self._closed.values(), *([self._current] if self._current else [])]:
            with contextlib.suppress(OSError):
                os.fsync(segment.fd)
            with contextlib.suppress(OSError):
                os.close(segment.fd)
            if segment.outstanding == 0:
                with contextlib.suppress(FileNotFoundError):
                    segment.path.unlink()
        self._closed.clear()
        self._current = None
        self._unsynced = []

    def dead_letter(self, record: dict[str, Any]) -> None:
        """Keep a record Postgres refused on its own (`OWNER.deadletter`, fsynced; no drain
        replays it: an operator decides)."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{self.owner}.deadletter"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- the spool ---------------------------------------------------------------------------

    @property
    def _active(self) -> Path:
        return self.directory / f"{self.owner}.jsonl"

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (blocking: call it from a worker thread)."""
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._active, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def claim(self) -> list[Path]:
        """Rename every file this process may drain now to a `.draining` name of its own."""
        if not self.directory.exists():
            return []
        now = time.time()
        claimed: list[Path] = []
        for path in sorted(self.directory.iterdir()):
            mine = path.name.startswith(self.owner + ".") or path.name.startswith(self.owner + "~")
            if path.suffix not in (".jsonl", ".draining", ".journal"):
                continue
            if mine and path.suffix == ".journal":
                continue  # our own batcher still owns it (and holds its records in memory)
            if mine and path.suffix == ".draining":
                claimed.append(path)  # a drain of ours that did not finish
                continue
            if not mine and not self._claimable(path, now):
                continue
            self._claims += 1
            target = self.directory / f"{self.owner}~{self._claims}-{path.stem}.draining"
            with self._lock:
                try:
                    path.rename(target)
                except FileNotFoundError:
                    continue  # another process claimed it first
            claimed.append(target)
        return claimed

    def _claimable(self, path: Path, now: float) -> bool:
        if path.name.endswith(".closed.jsonl") or _writer_is_dead(path.name):
            return True
        try:
            return now - path.stat().st_mtime >= self.stale_after_s
        except FileNotFoundError:
            return False

    def close(self) -> None:
        """This process will write or drain no more: let any other process take what is left."""
        if not self.directory.exists():
            return
        with self._lock:
            for n, path in enumerate(sorted(self.directory.iterdir())):
                mine = path.name.startswith((self.owner + ".", self.owner + "~"))
                closed = path.name.endswith(".closed.jsonl")
                if mine and not closed and path.suffix in (".jsonl", ".draining", ".journal"):
                    path.rename(self.directory / f"{self.owner}~c{n}.closed.jsonl")

    @staticmethod
    def records(path: Path) -> Iterator[dict[str, Any]]:
        with path.open("rb") as fh:
            for number, line in enumerate(fh, 1):
                try:
                    yield json.loads(line)
                except ValueError:
                    log.error("spool %s line %d is unreadable; skipped", path.name, number)

    def pending(self) -> int:
        """How many records wait in the spool and the journal (for readiness, /metrics and
        tests): our journal's records not yet landed, and every line of the other files."""
        if not self.directory.exists():
            return self.journaled
        total = self.journaled
        for path in self.directory.iterdir():
            if path.suffix == ".journal" and path.name.startswith(self.owner + "."):
                continue  # counted above (its landed lines are not pending)
            if path.suffix in (".jsonl", ".draining", ".journal"):
                with contextlib.suppress(FileNotFoundError), path.open("rb") as fh:
                    total += sum(1 for _ in fh)  # gone meanwhile: claimed and replayed
        return total


@dataclass(eq=False)
class _Segment:
    number: int
    path: Path
    fd: int
    until: float  # closed for new records from then on
    size: int = 0
    outstanding: int = 0  # records written, not yet landed
    dirty: bool = False  # written since the last fsync
    open: bool = True


def host_name() -> str:
    """This host's name as used in owner names (no dots or tildes, which name files)."""
    return socket.gethostname().replace(".", "_").replace("~", "_")


def owner_name() -> str:
    """A name for this server process, unique across hosts and restarts: `host-pid-nonce`."""
    return f"{host_name()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def _writer_is_dead(name: str) -> bool:
    """Owners are `host-pid-nonce`: a file from this host whose pid is gone is orphaned."""
    owner = name.split(".", 1)[0].split("~", 1)[0]
    host, _, pid_text = owner.rpartition("-")[0].rpartition("-")
    if host != host_name() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
