"""Measure usage reports over HTTP against a running `tollgate serve`.

    .venv/bin/python bench/reports_bench.py --url http://127.0.0.1:8765 \
        --admin-token "$TOLLGATE_ADMIN_TOKEN" \
        --database-url postgresql://postgres@127.0.0.1:5432/tollgate_reports_bench

For one calendar month (default: the last whole month in the ledger) it times `GET
/admin/usage` for every grouping and a few filters, warm (median and max of --runs) and cold
(median and max of --cold-runs, each after evicting the database from Postgres' buffers and the
OS page cache), then streams the month's full CSV export (one line per ledger row) and reports
rows/s and the server's peak RSS while it streams.

Cold runs need the database's files on this machine and permission to read them (root, or the
postgres user): the pages are dropped from the page cache with posix_fadvise(DONTNEED), file by
file, for this database only, after filling Postgres' shared buffers with other pages of it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import asyncpg
import httpx
import psutil


@dataclass
class Timing:
    name: str
    rows: int
    cold: list[float]
    warm: list[float]


def _ms(values: list[float], pick: str) -> str:
    if not values:
        return "-"
    value = statistics.median(values) if pick == "median" else max(values)
    return f"{value * 1000:.1f}"


async def _month(conn: asyncpg.Connection, month: str | None) -> tuple[str, str]:
    if month is None:
        last: object = await conn.fetchval("SELECT max(day) FROM usage_daily")
        start = await conn.fetchval(
            "SELECT (date_trunc('month', $1::date) - interval '1 month')::date", last
        )
    else:
        start = await conn.fetchval("SELECT $1::date", f"{month}-01")
    end = await conn.fetchval("SELECT ($1::date + interval '1 month')::date", start)
    return start.isoformat(), end.isoformat()


async def _samples(conn: asyncpg.Connection, start: str) -> dict[str, str]:
    """A busy tenant, one of its users and keys, and the most used model."""
    row = await conn.fetchrow(
        """
        SELECT d.tenant_id, d.api_key_id, u.external_id, d.model
          FROM usage_daily d JOIN end_users u ON u.id = d.end_user_id
         WHERE d.day = $1::date ORDER BY d.requests DESC LIMIT 1
        """,
        date.fromisoformat(start),
    )
    assert row is not None, "no usage in that month: seed first (bench/seed_ledger.py)"
    return {
        "tenant": str(row["tenant_id"]),
        "key": str(row["api_key_id"]),
        "user": row["external_id"],
        "model": row["model"],
    }


async def _evict(conn: asyncpg.Connection) -> None:
    """Push this database out of shared buffers (index scans over other ledger pages), then
    out of the OS page cache (fadvise DONTNEED on its files)."""
    await conn.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
    await conn.fetchval(
        "SELECT count(l.cost_usd) FROM (SELECT * FROM usage_ledger ORDER BY started_at "
        "LIMIT 2500000) l"
    )
    await conn.execute("RESET enable_seqscan; RESET enable_bitmapscan")
    data_dir = await conn.fetchval("SELECT setting FROM pg_settings WHERE name = 'data_directory'")
    oid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()")
    _drop_page_cache(Path(data_dir, "base", str(oid)))


def _drop_page_cache(directory: Path) -> None:
    for path in directory.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _queries(start: str, end: str, s: dict[str, str]) -> list[tuple[str, dict[str, str]]]:
    month = {"from": start, "to": end}
    edges = {"from": f"{start}T09:30:00Z", "to": f"{end}T00:00:00.5Z"}
    return [
        ("group_by=user", {**month, "group_by": "user"}),
        ("group_by=day", {**month, "group_by": "day"}),
        ("group_by=tenant", {**month, "group_by": "tenant"}),
        ("group_by=model", {**month, "group_by": "model"}),
        ("group_by=key", {**month, "group_by": "key"}),
        ("tenant_id + group_by=user", {**month, "group_by": "user", "tenant_id": s["tenant"]}),
        ("tenant_id + group_by=day", {**month, "group_by": "day", "tenant_id": s["tenant"]}),
        ("user + group_by=day", {**month, "group_by": "day", "user": s["user"]}),
        ("model + group_by=user", {**month, "group_by": "user", "model": s["model"]}),
        ("model + group_by=day", {**month, "group_by": "day", "model": s["model"]}),
        ("key_id + group_by=user", {**month, "group_by": "user", "key_id": s["key"]}),
        ("no group_by (total)", month),
        ("non-midnight from/to, by user", {**edges, "group_by": "user"}),
        ("non-midnight from/to, by day", {**edges, "group_by": "day"}),
    ]


async def _time(http: httpx.AsyncClient, params: dict[str, str]) -> tuple[float, int]:
    began = time.perf_counter()
    response = await http.get("/admin/usage", params=params)
    elapsed = time.perf_counter() - began
    response.raise_for_status()
    return elapsed, len(response.json()["rows"])


async def measure_queries(
    http: httpx.AsyncClient, conn: asyncpg.Connection, args: argparse.Namespace
) -> tuple[list[Timing], tuple[str, str]]:
    window = await _month(conn, args.month)
    timings = []
    for name, params in _queries(*window, await _samples(conn, window[0])):
        cold = []
        for _ in range(args.cold_runs):
            await _evict(conn)
            cold.append((await _time(http, params))[0])
        warm, rows = [], 0
        for _ in range(args.runs):
            elapsed, rows = await _time(http, params)
            warm.append(elapsed)
        timings.append(Timing(name, rows, cold, warm))
    return timings, window


def _server_pid(url: str) -> int | None:
    port = httpx.URL(url).port
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return int(conn.pid)
    return None


async def measure_export(url: str, token: str, window: tuple[str, str]) -> dict[str, float]:
    pid = _server_pid(url)
    proc = psutil.Process(pid) if pid else None
    baseline = proc.memory_info().rss if proc else 0
    peak, done = baseline, threading.Event()

    def sample() -> None:
        nonlocal peak
        while proc is not None and not done.wait(0.02):
            peak = max(peak, proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = size = 0
    began = time.perf_counter()
    headers = {"authorization": f"Bearer {token}"}
    params = {"from": window[0], "to": window[1], "format": "csv"}
    timeout = httpx.Timeout(600.0)
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout) as http,
        http.stream("GET", "/admin/usage", params=params) as response,
    ):
        response.raise_for_status()
        first_byte = time.perf_counter() - began
        async for chunk in response.aiter_raw():
            lines += chunk.count(b"\n")
            size += len(chunk)
    elapsed = time.perf_counter() - began
    done.set()
    sampler.join()
    rows = lines - 1  # the header
    return {
        "rows": rows,
        "mb": size / 1e6,
        "seconds": elapsed,
        "first_byte_ms": first_byte * 1000,
        "rows_per_s": rows / elapsed,
        "rss_before_mb": baseline / 1e6,
        "rss_peak_mb": peak / 1e6,
    }


def _print_table(timings: list[Timing], window: tuple[str, str], runs: tuple[int, int]) -> None:
    print(f"\nGET /admin/usage, {window[0]} <= started_at < {window[1]} (times in ms)")
    print(f"warm: {runs[0]} runs; cold: {runs[1]} runs, each after evicting the database\n")
    heads = ("warm med", "warm max", "cold med", "cold max")
    print(f"{'query':34} {'rows':>5} " + " ".join(f"{h:>9}" for h in heads))
    for t in timings:
        print(
            f"{t.name:34} {t.rows:>5} {_ms(t.warm, 'median'):>9} {_ms(t.warm, 'max'):>9} "
            f"{_ms(t.cold, 'median'):>9} {_ms(t.cold, 'max'):>9}"
        )


async def main_async(args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(args.database_url)
    headers = {"authorization": f"Bearer {args.admin_token}"}
    try:
        async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=60) as http:
            timings, window = await measure_queries(http, conn, args)
        _print_table(timings, window, (args.runs, args.cold_runs))
        export = await measure_export(args.url, args.admin_token, window)
    finally:
        await conn.close()
    print(
        f"\nfull-month CSV export (no group_by): {export['rows']:,.0f} rows, "
        f"{export['mb']:,.0f} MB in {export['seconds']:.1f}s = {export['rows_per_s']:,.0f} "
        f"rows/s; first byte after {export['first_byte_ms']:.0f} ms; server RSS "
        f"{export['rss_before_mb']:.0f} MB before, {export['rss_peak_mb']:.0f} MB peak"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="a running tollgate")
    parser.add_argument("--admin-token", default=os.environ.get("TOLLGATE_ADMIN_TOKEN"))
    parser.add_argument("--database-url", required=True, help="the same database, postgresql://")
    parser.add_argument("--month", help="YYYY-MM (default: the last whole month with data)")
    parser.add_argument("--runs", type=int, default=10, help="warm runs per query")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold runs per query (0: none)")
    args = parser.parse_args()
    if not args.admin_token:
        parser.error("--admin-token or TOLLGATE_ADMIN_TOKEN is required")
    args.database_url = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
