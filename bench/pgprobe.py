"""Postgres, as the benchmark sees it: psql, the postmaster pinned to a core, the
statements a level sent (pg_stat_statements), the ledger function calls
(pg_stat_user_functions), the wait-event sampler, and the ledger audit after a run."""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

# Statements that admit a request (the request waits for them, or a refill ahead of need):
# the per-request reserve, lease refills (money, slots and rpm permits), key and end-user
# lookups on a cache miss.
_ADMISSION = re.compile(
    r"tollgate_reserve\b|tollgate_lease_refill"
    r"|\bapi_keys\b|\bend_users\b"
)

LEDGER_FUNCTIONS = ("tollgate_reserve", "tollgate_lease_refill", "tollgate_lease_return")


def psql(db: str, sql: str) -> str:
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-At", "-F", "\t", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def postmaster_pid() -> int | None:
    """The pid of the Postgres server the benchmark uses (its postmaster.pid), if readable."""
    with contextlib.suppress(Exception):
        data_dir = psql("postgres", "show data_directory")
        return int((Path(data_dir) / "postmaster.pid").read_text().split()[0])
    return None


def pg_statements(db: str | None) -> tuple[int, int] | None:
    """Statements the clients of `db` sent so far (pg_stat_statements): (all, admission), or
    None when the extension is not loaded (`shared_preload_libraries = 'pg_stat_statements'`).
    Statements that a deferred trigger runs at commit are counted as top level by the
    extension; they are not round trips, so they are left out."""
    if db is None:
        return None
    try:
        rows = psql(
            "postgres",  # the extension's view (created there) shows every database
            r"select regexp_replace(query, '\s+', ' ', 'g'), calls "
            "from pg_stat_statements s join pg_database d "
            f"on d.oid = s.dbid where d.datname = '{db}'",
        )
        triggers = psql(
            db,
            r"select regexp_replace(prosrc, '\s+', ' ', 'g') from pg_proc "
            "where prorettype = 'trigger'::regtype",
        )
    except subprocess.CalledProcessError:
        return None
    total = admission = 0
    for line in rows.splitlines():
        query, _, calls = line.rpartition("\t")
        if not calls.isdigit() or query.strip()[:60] in triggers:
            continue
        total += int(calls)
        if _ADMISSION.search(query):
            admission += int(calls)
    return total, admission


def pin_postgres(pid: int | None, cores: str) -> None:
    """Pin the Postgres server (postmaster and every backend) to `cores`; new backends inherit
    the postmaster's affinity."""
    if pid is None:
        return
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            proc.cpu_affinity([int(c) for c in cores.split(",")])


class PgWaitSampler(threading.Thread):
    """Samples `pg_stat_activity` for one database every `interval` seconds over one persistent
    psql session (no process per sample), counting backends by (state, wait event) during the
    measured window. `summary()` gives the mean number of backends in each, per sample."""

    QUERY = (
        "select coalesce(state, '?'), coalesce(wait_event_type, '-'), coalesce(wait_event, '-'), "
        "count(*) from pg_stat_activity where datname = '{db}' and pid <> pg_backend_pid() "
        "group by 1, 2, 3;\n\\echo __END__\n"
    )

    def __init__(self, db: str, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.query = self.QUERY.format(db=db)
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._on = False
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._psql = subprocess.Popen(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-At", "-F", "\t", "-q"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip

    def _sample(self) -> Counter[str]:
        assert self._psql.stdin is not None and self._psql.stdout is not None
        self._psql.stdin.write(self.query)
        self._psql.stdin.flush()
        out: Counter[str] = Counter()
        for line in self._psql.stdout:
            line = line.rstrip("\n")
            if line == "__END__":
                break
            state, wtype, wevent, n = line.split("\t")
            out[f"{state} {wtype}:{wevent}"] += int(n)
        return out

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            with self._lock:
                if not self._on:
                    continue
            sample = self._sample()
            with self._lock:
                if self._on:
                    self.counts.update(sample)
                    self.samples += 1

    def start_window(self) -> None:
        with self._lock:
            self.counts.clear()
            self.samples = 0
            self._on = True

    def end_window(self) -> None:
        with self._lock:
            self._on = False

    def summary(self) -> dict[str, object]:
        with self._lock:
            n = max(self.samples, 1)
            return {
                "samples": self.samples,
                "mean_backends": {
                    k: round(v / n, 2) for k, v in self.counts.most_common() if v / n >= 0.01
                },
            }

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        with contextlib.suppress(Exception):
            assert self._psql.stdin is not None
            self._psql.stdin.close()
        self._psql.wait(5)


def ledger_counts(db: str) -> Counter[str]:
    rows = psql(db, "select status, count(*) from usage_ledger group by status")
    out: Counter[str] = Counter()
    for line in rows.splitlines():
        status, n = line.split("\t")
        out[status] = int(n)
    return out


def settle_ledger(db: str, timeout: float = 15.0) -> Counter[str]:
    """Counts once no row is in flight any more (or after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = ledger_counts(db)
        if counts.get("in_flight", 0) == 0 or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def pg_sessions(db: str) -> int:
    """Sessions ever established to `db` (pg_stat_database.sessions, Postgres 14+)."""
    with contextlib.suppress(Exception):
        return int(psql(db, f"select sessions from pg_stat_database where datname = '{db}'"))
    return 0


def ledger_calls(db: str) -> dict[str, int]:
    """Transactions committed in `db` and calls of the ledger functions that run on their own
    (the bench database has track_functions = 'pl'): per-request reserves and lease refills are
    the statements on a request's critical path; everything else is background."""
    counts = {name: 0 for name in LEDGER_FUNCTIONS}
    with contextlib.suppress(Exception):
        counts["transactions"] = int(
            psql(
                db,
                f"select xact_commit + xact_rollback from pg_stat_database where datname = '{db}'",
            )
        )
        for line in psql(db, "select funcname, calls from pg_stat_user_functions").splitlines():
            name, calls = line.split("\t")
            if name in counts:
                counts[name] = int(calls)
    return counts
