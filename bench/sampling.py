"""Sampling the processes under test: CPU and RSS of a process tree, Postgres CPU, core
busyness. Used by run.py."""

from __future__ import annotations

import contextlib
import threading

import psutil

# -- sampling ----------------------------------------------------------------------------


def tree(pid: int) -> list[psutil.Process]:
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu(pid: int) -> float:
    total = 0.0
    for p in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def tree_rss(pid: int) -> int:
    total = 0
    for p in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def pg_cpu(pid: int | None) -> float:
    """CPU seconds of the whole Postgres cluster: the postmaster, its live children, and (via
    children_user/children_system) every backend it already reaped, so short-lived connections
    are counted too."""
    if pid is None:
        return 0.0
    try:
        p = psutil.Process(pid)
        t = p.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for c in p.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                ct = c.cpu_times()
                total += ct.user + ct.system
        return total
    except psutil.NoSuchProcess:
        return 0.0


def pg_db_cpu(pid: int | None, db: str | None) -> float:
    """CPU seconds of the live Postgres backends connected to `db` (the gateway's pool): the
    cluster figure also counts other databases' work on a shared Postgres."""
    if pid is None or not db:
        return 0.0
    total = 0.0
    with contextlib.suppress(psutil.NoSuchProcess):
        for c in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                if f" {db} " in " ".join(c.cmdline()) + " ":
                    t = c.cpu_times()
                    total += t.user + t.system
    return total


def core_busy() -> list[float]:
    """Busy seconds per CPU (everything but idle and iowait)."""
    out = []
    for t in psutil.cpu_times(percpu=True):
        out.append(
            sum(t)
            - t.idle
            - getattr(t, "iowait", 0.0)
            - getattr(t, "guest", 0.0)
            - getattr(t, "guest_nice", 0.0)
        )
    return out


class Sampler(threading.Thread):
    """Samples the RSS of a process tree every `interval` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_rss = tree_rss(pid)
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak_rss = max(self.peak_rss, tree_rss(self.pid))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.peak_rss = max(self.peak_rss, tree_rss(self.pid))
