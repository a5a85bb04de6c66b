"""A local durable spool for settlements the database could not take.

Each record is one JSON line, appended and fsynced before `append` returns, to a file named
after the process that wrote it. A drainer claims a file by renaming it (atomic), replays each
record (settling is idempotent, so a replay after a crash mid-drain counts once) and deletes it.
Another process's file is claimed when that process closed it (a graceful stop with the
database still down renames it `*.closed.jsonl`), when its writer is a dead process on this
host, or once it has been quiet for `stale_after_s`."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, directory: Path, owner: str, stale_after_s: float = 30.0) -> None:
        self.directory = directory
        self.owner = owner
        self.stale_after_s = stale_after_s
        self._lock = threading.Lock()
        self._claims = 0

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
            if path.suffix not in (".jsonl", ".draining"):
                continue
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
                if mine and not closed and path.suffix in (".jsonl", ".draining"):
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
        """How many records wait in the spool (for readiness and tests)."""
        if not self.directory.exists():
            return 0
        total = 0
        for path in self.directory.iterdir():
            if path.suffix in (".jsonl", ".draining"):
                with path.open("rb") as fh:
                    total += sum(1 for _ in fh)
        return total


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
