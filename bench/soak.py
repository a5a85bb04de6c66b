"""A bounded soak: long streams at high concurrency through `tollgate serve`, with the
(private, embedded) Postgres restarted mid-run, then an audit of the ledger.

    .venv/bin/python bench/soak.py [--duration 600] [--concurrency 256] [--restarts 2]

Two tenants share the load (worker i uses key i mod 2): `open` has no practical limit;
`capped` has a hard monthly budget that the soak reaches part-way. Both are far above the lease
thresholds, so they are admitted against escrow leases (the capped one per request once its
remainder is below TOLLGATE_LEASE_MIN_WORST_CASES worst cases); the lease counters of
`/metrics` are printed at the end of the load. Then the gateway is stopped gracefully and the
ledger audited: completed streams vs `ok` rows (lost rows), duplicate ids, rows still in
flight, leases, reservations and slots left, and the capped tenant's spend against its budget
(overshoot).
Postgres is the embedded one from tests/pg.py (StoppablePostgres), stopped with
`pg_ctl -m immediate` and started again after 5 s, `--restarts` times, evenly spread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from api.db.migrate import upgrade  # noqa: E402
from tests.pg import StoppablePostgres, asyncpg_dsn, with_database  # noqa: E402

PY = sys.executable


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )


def wait_http(url: str, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def tenant_keys(url: str, budget: Decimal) -> list[str]:
    from api.db.session import session_scope
    from api.keys.service import create_key
    from api.tenants.service import create_tenant

    async def work(session):  # type: ignore[no-untyped-def]
        keys = []
        for name, limit in (("open", Decimal(10**6)), ("capped", budget)):
            tenant = await create_tenant(session, name, "pro")
            tenant.monthly_budget_usd = limit
            tenant.rpm_limit = 10**6
            tenant.max_concurrent = 10**5
            keys.append((await create_key(session, tenant.id, name="soak")).key)
        return keys

    return await session_scope(url, work)


def lease_metrics(url: str) -> str:
    """The server's lease counters: requests admitted from a lease vs reserved per request
    (and why), and refills by result (so the soak shows that its tenants ran on leases)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
    except OSError as exc:
        return f"/metrics unavailable ({exc})"
    lines = [
        line
        for line in text.splitlines()
        if line.startswith(("tollgate_lease_admissions_total", "tollgate_lease_refills_total"))
    ]
    return "\n".join(lines)


async def audit(dsn: str) -> dict[str, object]:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            left = await conn.fetchval("SELECT count(*) FROM usage_ledger WHERE status='in_flight'")
            if left == 0:
                break
            await asyncio.sleep(1)
        rows = await conn.fetch(
            "SELECT t.name, l.status, count(*) AS n, count(DISTINCT l.id) AS ids,"
            " sum(l.cost_usd) AS cost FROM usage_ledger l JOIN tenants t ON t.id = l.tenant_id"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        )
        leases = await conn.fetchval("SELECT count(*) FROM budget_leases")
        counters = await conn.fetch(
            "SELECT t.name, c.spent_usd, c.reserved_usd, c.in_flight, t.monthly_budget_usd"
            " FROM spend_counters c JOIN tenants t ON t.id = c.tenant_id"
            " WHERE c.end_user_id IS NULL"
        )
        return {
            "in_flight_left": left,
            "leases_left": leases,
            "rows": [dict(r) for r in rows],
            "counters": [dict(r) for r in counters],
        }
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--restarts", type=int, default=2)
    parser.add_argument("--budget", default="40", help="the capped tenant's budget (USD)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tollgate-soak-"))
    pg = StoppablePostgres(tmp / "pg")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        asyncpg_url = with_database(pg.url, "postgres")
        upgrade(asyncpg_url)
        keys = asyncio.run(tenant_keys(asyncpg_url, Decimal(args.budget)))
        (tmp / "keys").write_text("\n".join(keys) + "\n")
        sim_port, port = free_port(), free_port()
        procs.append(
            spawn(
                [PY, "-m", "api", "simulate-upstream", "--port", str(sim_port)], {}, tmp / "sim.log"
            )
        )
        env = {
            "DATABASE_URL": asyncpg_dsn(asyncpg_url),
            "TOLLGATE_UPSTREAM": "simulated",
            "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{sim_port}",
            "TOLLGATE_DATA_DIR": str(tmp / "data"),
            "TOLLGATE_LOG_LEVEL": "warning",
        }
        procs.append(spawn([PY, "-m", "api", "serve", "--port", str(port)], env, tmp / "serve.log"))
        wait_http(f"http://127.0.0.1:{port}/healthz")
        load = subprocess.Popen(
            [
                PY,
                str(ROOT / "bench" / "loadgen.py"),
                "--url",
                f"http://127.0.0.1:{port}/v1/messages",
                "--keys-file",
                str(tmp / "keys"),
                "--tokens",
                "100",
                "-H",
                "x-sim-token-delay-ms: 20",
                "-c",
                str(args.concurrency),
                "-d",
                str(args.duration),
                "--json",
            ],
            stdout=subprocess.PIPE,
        )
        started = time.monotonic()
        for n in range(args.restarts):
            at = args.duration * (n + 1) / (args.restarts + 1)
            time.sleep(max(0.0, started + at - time.monotonic()))
            print(f"[{time.monotonic() - started:6.1f}s] postgres stop (immediate)", flush=True)
            pg.stop()
            time.sleep(5)
            pg.start()
            print(f"[{time.monotonic() - started:6.1f}s] postgres started", flush=True)
        out, _ = load.communicate()
        result = json.loads(out)
        print(lease_metrics(f"http://127.0.0.1:{port}/metrics"), flush=True)
        # Stop the gateway gracefully before the audit: its last batch lands and its leases go
        # back, so the audit sees nothing reserved, leased or in flight (or a leak).
        serve = procs[1]
        serve.terminate()
        serve.wait(timeout=120)
        print(
            json.dumps(
                {
                    k: result[k]
                    for k in (
                        "elapsed_s",
                        "ok",
                        "errors",
                        "error_kinds",
                        "statuses",
                        "sent_total",
                        "ok_total",
                        "total_p50_ms",
                        "total_p99_ms",
                        "rps",
                    )
                }
            ),
            flush=True,
        )
        report = asyncio.run(audit(asyncpg_dsn(asyncpg_url)))
        ok_rows = sum(r["n"] for r in report["rows"] if r["status"] == "ok")  # type: ignore[index,union-attr]
        dupes = sum(r["n"] - r["ids"] for r in report["rows"])  # type: ignore[index,union-attr]
        print(json.dumps(report, default=str, indent=1))
        overshoot = sum(
            max(Decimal(str(c["spent_usd"])) - Decimal(str(c["monthly_budget_usd"])), Decimal(0))
            for c in report["counters"]  # type: ignore[union-attr]
        )
        print(
            f"completed streams {result['ok_total']}, ok rows {ok_rows}, "
            f"lost {result['ok_total'] - ok_rows}, duplicate ids {dupes}, "
            f"overshoot ${overshoot}, leases left {report['leases_left']}",
            flush=True,
        )
        spool = (
            list((tmp / "data" / "spool").glob("*")) if (tmp / "data" / "spool").exists() else []
        )
        print(f"spool files left: {len(spool)}; serve log: {tmp / 'serve.log'}")
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                proc.kill()
        pg.close()


if __name__ == "__main__":
    main()
