"""One full benchmark run: direct simulator vs Tollgate vs LiteLLM, streaming /v1/messages.

    .venv/bin/python bench/run.py [--no-litellm] [--profile] [--quick]
    .venv/bin/python bench/run.py --targets tollgate --tenants 100 --tollgate-bin PATH

What it does (see bench/README.md for the method):

1. starts the simulated upstream (`tollgate simulate-upstream`, pinned with `taskset -c 1`);
2. creates a fresh Postgres database, migrates it, creates `--tenants` `pro` tenants (default 1:
   one hot tenant) with one key each, and raises their budget, rpm and concurrency limits so that
   no limit binds during the run;
3. starts Tollgate (`tollgate serve`, one worker, `taskset -c 0`) from `--tollgate-bin` (any
   checkout's virtualenv, so the same harness measures an older commit too);
4. runs `bench/loadgen.py` (`taskset -c 1`) at each concurrency level against the simulator
   directly, then against Tollgate; after each Tollgate level it waits for the ledger to settle
   and checks that rows with status 'ok' == requests that completed with 200 + message_stop,
   and that no request was refused (every response a 200);
5. optionally profiles Tollgate under c=32 with py-spy (`--profile`);
6. stops Tollgate, starts LiteLLM's proxy (`taskset -c 0`, one worker, no database) from a
   separate virtualenv, pointed at the same simulator, and runs the same levels against it;
7. prints a markdown table and writes JSON + markdown to bench/results/.

While each level runs, the server under test is sampled with psutil (process tree): peak RSS,
and average CPU over exactly the measured window (loadgen prints markers around it).

Beside it: `pgprobe.py` (what Postgres did: statements, function calls, waits, the ledger
audit), `report.py` (a measured `Level` and the Markdown report), `sampling.py` (CPU and RSS).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from pgprobe import (
    PgWaitSampler,
    ledger_calls,
    ledger_counts,
    pg_sessions,
    pg_statements,
    pin_postgres,
    postmaster_pid,
    psql,
    settle_ledger,
)
from report import CLIENT_CORE, GATEWAY_CORE, Level, machine, render
from sampling import Sampler, core_busy, pg_cpu, pg_db_cpu, tree_cpu, tree_rss

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_BIN = Path(sys.executable).parent
TOLLGATE = str(VENV_BIN / "tollgate")  # the simulator always runs from the harness's venv
DEFAULT_TOLLGATE_BIN = str(REPO / ".venv" / "bin" / "tollgate")
PG = "postgresql://postgres@127.0.0.1:5432"
MODEL = "claude-sonnet-4-6"
PG_PID: int | None = None
TOKENS = [64]  # tokens per stream (--tokens)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before listening; see its log")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on {port} within {timeout} s")


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} during start-up; see its log")
        with contextlib.suppress(Exception), urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.25)
    raise SystemExit(f"{what} not ready at {url} within {timeout} s")


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_level(
    target: str,
    url: str,
    key: str | Path,
    concurrency: int,
    server_pid: int,
    sim_pid: int,
    plan: dict[str, float],
    logdir: Path,
    waits: PgWaitSampler | None = None,
    db: str | None = None,
    api: str = "anthropic",
) -> Level:
    """`key` is one key, or a Path to a file of keys (worker i uses key i mod N); `api` is the
    load generator's API (`anthropic` Messages or `openai` chat.completions)."""
    keyarg = ["--keys-file", str(key)] if isinstance(key, Path) else ["--key", key]
    cmd = [
        "taskset", "-c", CLIENT_CORE, sys.executable, str(BENCH / "loadgen.py"),
        "--url", url, *keyarg, "--model", MODEL, "-c", str(concurrency), "--api", api,
        "--warmup", str(plan["warmup"]), "--json", "--markers", "--tokens", str(TOKENS[0]),
    ]  # fmt: skip
    if plan.get("requests"):
        cmd += ["--requests", str(int(plan["requests"]))]
    if plan.get("duration"):
        cmd += ["--duration", str(plan["duration"])]
    sampler = Sampler(server_pid)
    sampler.start()
    errf = open(logdir / f"loadgen-{target}-c{concurrency}.err", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True, bufsize=1)
    marks: dict[str, tuple[float, float, float, float, float, list[float], float]] = {}
    statements: dict[str, tuple[int, int] | None] = {}
    result: dict[str, object] | None = None
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.strip()
        if line in ("#MEASURE_START", "#MEASURE_END"):
            if waits is not None:
                (waits.start_window if line == "#MEASURE_START" else waits.end_window)()
            statements[line] = pg_statements(db)
            marks[line] = (
                time.perf_counter(),
                tree_cpu(server_pid),
                tree_cpu(proc.pid),
                tree_cpu(sim_pid) if sim_pid != server_pid else 0.0,
                pg_cpu(PG_PID),
                core_busy(),
                pg_db_cpu(PG_PID, db),
            )
        elif line.startswith("{"):
            result = json.loads(line)
    proc.wait()
    errf.close()
    sampler.stop()
    if proc.returncode != 0 or result is None:
        raise SystemExit(f"loadgen failed ({proc.returncode}); see {errf.name}")
    t0, s0, c0, m0, p0, k0, d0 = marks["#MEASURE_START"]
    t1, s1, c1, m1, p1, k1, d1 = marks["#MEASURE_END"]
    wall = max(t1 - t0, 1e-9)
    explained = (s1 - s0) + (c1 - c0) + ((m1 - m0) if sim_pid != server_pid else 0.0) + (p1 - p0)
    busy = sum(b - a for a, b in zip(k0, k1, strict=True))
    lv = Level(
        target=target,
        concurrency=concurrency,
        result=result,
        server_cpu_pct=round(100 * (s1 - s0) / wall, 1),
        server_peak_rss_mb=round(sampler.peak_rss / 2**20, 1),
        server_rss_after_mb=round(tree_rss(server_pid) / 2**20, 1),
        client_cpu_pct=round(100 * (c1 - c0) / wall, 1),
        sim_cpu_pct=round(100 * (m1 - m0) / wall, 1) if sim_pid != server_pid else 0.0,
        pg_cpu_pct=round(100 * (p1 - p0) / wall, 1),
        pg_db_cpu_pct=round(100 * (d1 - d0) / wall, 1),
        other_cpu_pct=round(100 * (busy - explained) / wall, 1),
        core_busy_pct=[round(100 * (b - a) / wall, 1) for a, b in zip(k0, k1, strict=True)],
    )
    if waits is not None:
        lv.pg_waits = waits.summary()
    st0, st1 = statements.get("#MEASURE_START"), statements.get("#MEASURE_END")
    done = int(result.get("requests", 0))  # type: ignore[call-overload]
    if st0 is not None and st1 is not None and done:
        lv.pg_statements_per_request = (
            round((st1[0] - st0[0]) / done, 3),
            round((st1[1] - st0[1]) / done, 3),
        )
    return lv


# -- tenants -----------------------------------------------------------------------------

# Runs with the Python of --tollgate-bin, so it uses that checkout's own services (and key hash).
_CREATE_TENANTS = """
import asyncio, sys
from api.db.session import session_scope
from api.keys.service import create_key
from api.tenants.service import create_tenant

async def work(session):
    out = []
    for i in range(int(sys.argv[2])):
        tenant = await create_tenant(session, f"bench-{i}", "pro")
        out.append((tenant.id, (await create_key(session, tenant.id, name="bench")).key))
    return out

for tenant_id, key in asyncio.run(session_scope(sys.argv[1], work)):
    print(f"{tenant_id}\t{key}")
"""

# Per-tenant overrides (NULL = the plan's): the `pro` plan's $100 budget, 600 rpm and 32
# concurrent streams would bind at these rates; the benchmark measures the machinery, not refusals.
_UNBOUND = "monthly_budget_usd = 1000000, rpm_limit = 10000000, max_concurrent = 100000"


def interpreter(bin_path: str) -> str:
    """The Python a console script runs with (its shebang; this one for `#!/usr/bin/env`, as
    bench/granian_tollgate.py has)."""
    first = Path(bin_path).read_text(errors="replace").splitlines()[0]
    if first.startswith("#!") and "python" in first:
        exe = first[2:].strip().split()[0]
        return sys.executable if exe.endswith("/env") else exe
    return str(Path(bin_path).parent / "python")


def create_tenants(py: str, db: str, n: int, env: dict[str, str]) -> list[tuple[str, str]]:
    """`n` `pro` tenants with one key each and limits that never bind; (tenant id, key) pairs."""
    out = subprocess.run(
        [py, "-c", _CREATE_TENANTS, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}", str(n)],
        env=env, check=True, capture_output=True, text=True, cwd="/",
    ).stdout  # fmt: skip
    pairs = [tuple(line.split("\t")) for line in out.splitlines() if "\t" in line]
    if len(pairs) != n:
        raise SystemExit(f"expected {n} tenants, got {len(pairs)}: {out[-500:]}")
    ids = ", ".join(f"'{t}'" for t, _ in pairs)
    psql(db, f"update tenants set {_UNBOUND} where id in ({ids})")
    return pairs  # type: ignore[return-value]


def checkout_of(py: str) -> dict[str, str]:
    """Where the gateway's `api` package lives, and that checkout's commit (+ dirty flag)."""
    info = {"python": py}
    with contextlib.suppress(Exception):
        src = subprocess.run(
            [py, "-c", "import api, os; print(os.path.dirname(os.path.dirname(api.__file__)))"],
            capture_output=True, text=True, check=True, cwd="/",
        ).stdout.strip()  # fmt: skip
        info["checkout"] = src
        git = ["git", "-C", src]
        info["commit"] = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no", "--", "api", "migrations"],
            capture_output=True, text=True,
        ).stdout  # fmt: skip
        info["dirty"] = ", ".join(line[3:] for line in dirty.splitlines())
    return info


# -- ledger ------------------------------------------------------------------------------


def spool_records(data_dir: Path) -> int:
    spool = data_dir / "spool"
    if not spool.exists():
        return 0
    n = 0
    for f in spool.glob("*.jsonl"):
        with contextlib.suppress(OSError):
            n += sum(1 for _ in f.open("rb"))
    return n


# -- py-spy ------------------------------------------------------------------------------


def profile(
    url: str,
    key: str | Path,
    gw_pid: int,
    sim_pid: int,
    logdir: Path,
    seconds: float,
    concurrency: int = 32,
    native: bool = False,
    api: str = "anthropic",
) -> dict:
    pyspy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    if not pyspy:
        return {"error": "py-spy not installed (pip install py-spy into the venv)"}
    raw = logdir / f"profile-{api}-c{concurrency}.txt"
    rec = subprocess.Popen(
        ["taskset", "-c", CLIENT_CORE, pyspy, "record", "--pid", str(gw_pid), "--rate", "200",
         "--duration", str(int(seconds)), "--format", "raw", "--output", str(raw),
         # --native needs to pause the process for each sample
         *(["--native"] if native else ["--nonblocking"])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    time.sleep(1.0)
    level = run_level(
        "tollgate+py-spy", url, key, concurrency, gw_pid, sim_pid,
        {"warmup": 0.5, "duration": seconds}, logdir, api=api,
    )  # fmt: skip
    out, _ = rec.communicate(timeout=seconds + 30)
    (logdir / "py-spy.log").write_text(out or "")
    if rec.returncode != 0 or not raw.exists():
        return {
            "error": f"py-spy failed ({rec.returncode}): {(out or '').strip()[-500:]}",
            "ok_total": level.result["ok_total"],
            "statuses": level.result.get("statuses", {}),
        }
    own, incl, total = aggregate_raw(raw)
    return {
        "concurrency": concurrency,
        "api": api,
        "rps_under_profiler": level.result["rps"],
        "ok_total": level.result["ok_total"],
        "statuses": level.result.get("statuses", {}),
        "errors": level.result["errors"],
        "samples": total,
        "own_top": [(name, n, round(100 * n / total, 1)) for name, n in own.most_common(25)],
        "inclusive_top": [(name, n, round(100 * n / total, 1)) for name, n in incl.most_common(40)],
        "raw": str(raw),
    }


_FRAME_RE = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    m = _FRAME_RE.match(frame.strip())
    if not m:
        return frame.strip()
    file = m.group("file")
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    file = file.replace(str(REPO) + "/", "")
    return f"{m.group('func')} ({file})"


def aggregate_raw(path: Path) -> tuple[Counter[str], Counter[str], int]:
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    return own, incl, total


# -- the run -----------------------------------------------------------------------------


def litellm_version(bin_path: Path) -> str:
    py = bin_path.parent / "python"
    out = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True, text=True,
    )  # fmt: skip
    return out.stdout.strip() or "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--levels", default="1,32,128")
    ap.add_argument("--targets", default="direct,tollgate,litellm")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument(
        "--openai",
        action="store_true",
        help="also run Tollgate's /v1/chat/completions and LiteLLM's /chat/completions "
        "(targets tollgate-openai, litellm-openai) after each gateway's Messages levels",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="with --openai: run Tollgate's Messages and chat.completions levels N times on the "
        "same gateway, alternating which goes first (M O, O M, M O...), and report each round's "
        "chat.completions / Messages ratio with their mean and spread",
    )
    ap.add_argument("--litellm-bin", default="/tmp/litellm-venv/bin/litellm")
    ap.add_argument("--profile", action="store_true", help="py-spy Tollgate under c=32")
    ap.add_argument("--profile-seconds", type=float, default=12)
    ap.add_argument("--profile-concurrency", type=int, default=32)
    ap.add_argument("--profile-native", action="store_true", help="py-spy --native (C frames)")
    ap.add_argument(
        "--profile-api",
        choices=("anthropic", "openai"),
        default="anthropic",
        help="profile /v1/messages (anthropic) or /v1/chat/completions (openai)",
    )
    ap.add_argument(
        "--tollgate-bin",
        default=DEFAULT_TOLLGATE_BIN,
        help="the `tollgate` to measure (migrate, tenants, serve); the simulator always runs "
        "from this harness's venv",
    )
    ap.add_argument(
        "--tenants", type=int, default=1, help="pro tenants, one key each (1: one hot tenant)"
    )
    ap.add_argument(
        "--pg-waits",
        action="store_true",
        help="sample pg_stat_activity wait events during each Tollgate level (20 Hz)",
    )
    ap.add_argument(
        "--pin-postgres",
        action="store_true",
        help="pin the Postgres server to the gateway's core for the run (the issue's placement)",
    )
    ap.add_argument("--tokens", type=int, default=64, help="tokens per stream")
    ap.add_argument(
        "--token-delay-ms", type=int, default=0, help="simulator's delay between tokens"
    )
    ap.add_argument("--duration", type=float, default=10, help="measured seconds per level")
    ap.add_argument("--c1-requests", type=int, default=2000, help="cap at c=1")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--quick", action="store_true", help="3 s levels (smoke test)")
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--results", default=str(BENCH / "results"))
    ap.add_argument("--name", default="latest", help="results file name: NAME.md, NAME.json")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.c1_requests, args.warmup = 3.0, 500, 0.5
    levels = [int(x) for x in args.levels.split(",")]
    targets = args.targets.split(",")
    if args.no_litellm and "litellm" in targets:
        targets.remove("litellm")

    if args.tenants < 1:
        ap.error("--tenants must be at least 1")
    tollgate_bin = str(Path(args.tollgate_bin).resolve())
    gateway = checkout_of(interpreter(tollgate_bin))
    global PG_PID
    PG_PID = postmaster_pid()
    TOKENS[0] = args.tokens
    if args.pin_postgres:
        pin_postgres(PG_PID, GATEWAY_CORE)
        atexit.register(pin_postgres, PG_PID, ",".join(str(c) for c in range(os.cpu_count() or 1)))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logdir = Path(f"/tmp/tollgate-bench-{stamp}")
    logdir.mkdir(parents=True)
    data_dir = logdir / "data"
    db = f"tollgate_bench_{stamp.replace('-', '_')}"
    log(f"logs in {logdir}")
    log(f"tollgate: {tollgate_bin} ({gateway})")

    procs: list[subprocess.Popen[bytes]] = []

    def start(
        name: str, cmd: list[str], env: dict[str, str], cwd: Path = REPO
    ) -> subprocess.Popen[bytes]:
        f = open(logdir / f"{name}.log", "wb")  # noqa: SIM115
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        procs.append(p)
        return p

    levels_out: list[Level] = []
    notes: list[str] = []
    prof: dict | None = None
    lt_version = None
    try:
        # 1. simulator
        sim_port = free_port()
        base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "LITELLM"))
        }
        sim = start(
            "simulator",
            [
                "taskset",
                "-c",
                CLIENT_CORE,
                TOLLGATE,
                "simulate-upstream",
                "--port",
                str(sim_port),
                "--output-tokens",
                str(args.tokens),
                "--token-delay-ms",
                str(args.token_delay_ms),
            ],
            base_env,
        )
        wait_port(sim_port, sim, 20, "simulator")
        sim_url = f"http://127.0.0.1:{sim_port}/v1/messages"

        def levels_for(
            target: str,
            url: str,
            key: str | Path,
            server_pid: int,
            waits: PgWaitSampler | None = None,
            api: str = "anthropic",
        ) -> list[Level]:
            out = []
            for c in levels:
                plan = {"warmup": args.warmup, "duration": args.duration}
                if c == 1:
                    plan["requests"] = args.c1_requests
                log(f"{target} c={c} ...")
                lv = run_level(
                    target, url, key, c, server_pid, sim.pid, plan, logdir, waits,
                    db if target.startswith("tollgate") else None, api,
                )  # fmt: skip
                r = lv.result
                log(
                    f"  {r['rps']} req/s, TTFT p50 {r['ttft_p50_ms']} ms "
                    f"p99 {r['ttft_p99_ms']} ms, errors {r['errors']}+{r['warmup_errors']} "
                    f"(warm-up), CPU {lv.server_cpu_pct}%, Postgres {lv.pg_cpu_pct}% "
                    f"(bench db {lv.pg_db_cpu_pct}%), other {lv.other_cpu_pct}%, "
                    f"cores {lv.core_busy_pct}, "
                    f"peak RSS {lv.server_peak_rss_mb} MB"
                )
                out.append(lv)
                if target.startswith("tollgate"):
                    lv.ledger = check_ledger(lv)
                    log(f"  ledger: {lv.ledger}")
                if lv.pg_waits:
                    log(f"  Postgres backends (mean per sample): {lv.pg_waits}")
            return out

        expected_ok = [0]
        last_sessions = [0]
        last_statements: list[dict[str, int]] = [{}]
        sent = Counter[str]()  # HTTP statuses of every Tollgate request so far, warm-up included

        def check_ledger(lv: Level) -> dict[str, object]:
            expected_ok[0] += int(lv.result["ok_total"])  # type: ignore[arg-type]
            sent.update(lv.result.get("statuses", {}))  # type: ignore[arg-type]
            counts = settle_ledger(db)
            ok = counts.get("ok", 0)
            spooled = spool_records(data_dir)
            time.sleep(0.6)  # sessions are counted when they end; let the stats flush
            sessions = pg_sessions(db)
            new_sessions = sessions - last_sessions[0]
            last_sessions[0] = sessions
            statements = ledger_calls(db)
            delta = {k: v - last_statements[0].get(k, 0) for k, v in statements.items()}
            last_statements[0] = statements
            requests = max(1, sum(int(n) for n in lv.result.get("statuses", {}).values()))  # type: ignore[union-attr]
            critical = delta.get("tollgate_reserve", 0) + delta.get("tollgate_lease_refill", 0)
            return {
                "pg_per_request": {
                    "critical_path": round(critical / requests, 4),
                    "reserves": round(delta.get("tollgate_reserve", 0) / requests, 4),
                    "refills": round(delta.get("tollgate_lease_refill", 0) / requests, 4),
                    "background_transactions": round(
                        max(delta.get("transactions", 0) - critical, 0) / requests, 4
                    ),
                },
                "new_pg_sessions": new_sessions,
                "ok_rows": ok,
                "expected_ok": expected_ok[0],
                "lost": expected_ok[0] - ok,
                "statuses": dict(counts),
                "spooled": spooled,
                # every request so far answered 200 (no 402/429 from a limit, no 503)?
                "http_statuses": dict(sent),
                "refused": sum(n for status, n in sent.items() if status != "200"),
            }

        if "direct" in targets:
            levels_out += levels_for("direct", sim_url, "sk-ant-bench", sim.pid)

        # 2-3. Tollgate
        if "tollgate" in targets:
            psql("postgres", f"create database {db}")
            # Count calls of the ledger functions (pg_stat_user_functions) in this database only.
            psql("postgres", f"alter database {db} set track_functions = 'pl'")
            env = {
                **base_env,
                "DATABASE_URL": f"{PG}/{db}",
                "TOLLGATE_UPSTREAM": "simulated",
                "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{sim_port}",
                "TOLLGATE_DATA_DIR": str(data_dir),
            }
            env.pop("ANTHROPIC_API_KEY", None)
            subprocess.run([tollgate_bin, "migrate"], env=env, check=True, capture_output=True)
            last_sessions[0] = pg_sessions(db)
            pairs = create_tenants(interpreter(tollgate_bin), db, args.tenants, env)
            keys_file = logdir / "keys.txt"
            keys_file.write_text("".join(f"{k}\n" for _, k in pairs))
            key: str | Path = pairs[0][1] if args.tenants == 1 else keys_file
            log(f"{args.tenants} pro tenant(s), one key each, limits raised ({_UNBOUND})")
            gw_port = free_port()
            gw = start(
                "tollgate",
                ["taskset", "-c", GATEWAY_CORE, tollgate_bin, "serve", "--port", str(gw_port)],
                env,
            )
            wait_http_ok(f"http://127.0.0.1:{gw_port}/readyz", gw, 30, "tollgate")
            log(f"tollgate pid {gw.pid} on :{gw_port}, idle RSS {tree_rss(gw.pid) / 2**20:.1f} MB")
            gw_url = f"http://127.0.0.1:{gw_port}/v1/messages"
            waits = PgWaitSampler(db) if args.pg_waits else None
            if waits is not None:
                waits.start()
            oa_url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
            try:
                for n in range(args.rounds if args.openai else 1):
                    pair = [("tollgate", gw_url, "anthropic")]
                    if args.openai:
                        pair.append(("tollgate-openai", oa_url, "openai"))
                    for target, url, api in pair if n % 2 == 0 else pair[::-1]:
                        for lv in levels_for(target, url, key, gw.pid, waits, api):
                            lv.round = n
                            levels_out.append(lv)
            finally:
                if waits is not None:
                    waits.stop()
            if args.profile:
                pc = args.profile_concurrency
                log(f"profiling tollgate under c={pc} for {args.profile_seconds} s with py-spy ...")
                prof_url = (
                    f"http://127.0.0.1:{gw_port}/v1/chat/completions"
                    if args.profile_api == "openai"
                    else gw_url
                )
                prof = profile(
                    prof_url, key, gw.pid, sim.pid, logdir, args.profile_seconds, pc,
                    args.profile_native, args.profile_api,
                )  # fmt: skip
                expected_ok[0] += int(prof.get("ok_total", 0))
                sent.update(prof.get("statuses", {}))
                log(f"  profile: {prof.get('error') or prof.get('raw')}")
            stop(gw)
            if gw.returncode not in (0, -2, 130):
                notes.append(f"tollgate exited with {gw.returncode}")
            # after a graceful stop, nothing may be left in flight
            final = ledger_counts(db)
            notes.append(
                f"Tollgate ledger after a graceful stop: {dict(final)}; expected 'ok' rows "
                "(every 200 + message_stop, warm-up and profiled runs included): "
                f"{expected_ok[0]}; "
                f"spooled settlements: {spool_records(data_dir)}; "
                f"HTTP statuses of every request (warm-up and profiled run included): {dict(sent)}"
            )
            warn = [
                line
                for line in (logdir / "tollgate.log").read_text(errors="replace").splitlines()
                if '"level": "info"' not in line
            ]
            if warn:
                notes.append(f"tollgate log: {len(warn)} non-info lines, first: {warn[0][:300]}")

        # 6. LiteLLM
        if "litellm" in targets:
            lbin = Path(args.litellm_bin)
            if not lbin.exists():
                notes.append(f"LiteLLM skipped: {lbin} not found (pip install 'litellm[proxy]')")
            else:
                lt_version = litellm_version(lbin)
                master = "sk-bench-" + secrets.token_hex(16)
                cfg = logdir / "litellm.yaml"
                cfg.write_text(
                    "model_list:\n"
                    f"  - model_name: {MODEL}\n"
                    "    litellm_params:\n"
                    f"      model: anthropic/{MODEL}\n"
                    f"      api_base: http://127.0.0.1:{sim_port}\n"
                    "      api_key: sk-ant-bench-not-a-real-key\n"
                    "litellm_settings:\n"
                    "  telemetry: false\n"
                    "  set_verbose: false\n"
                    "general_settings:\n"
                    "  disable_spend_logs: true\n"
                    "  disable_error_logs: true\n"
                )
                lenv = {
                    **base_env,
                    "LITELLM_MASTER_KEY": master,
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no internet: do not fetch prices
                    "LITELLM_LOG": "ERROR",
                    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
                }
                lport = free_port()
                lt = start(
                    "litellm",
                    ["taskset", "-c", GATEWAY_CORE, str(lbin), "--config", str(cfg),
                     "--host", "127.0.0.1", "--port", str(lport), "--num_workers", "1"],
                    lenv, cwd=logdir,
                )  # fmt: skip
                wait_http_ok(f"http://127.0.0.1:{lport}/health/liveliness", lt, 120, "litellm")
                log(
                    f"litellm {lt_version} pid {lt.pid} on :{lport}, "
                    f"idle RSS {tree_rss(lt.pid) / 2**20:.1f} MB"
                )
                levels_out += levels_for(
                    "litellm", f"http://127.0.0.1:{lport}/v1/messages", master, lt.pid
                )
                if args.openai:
                    levels_out += levels_for(
                        "litellm-openai",
                        f"http://127.0.0.1:{lport}/chat/completions",
                        master,
                        lt.pid,
                        None,
                        "openai",
                    )
                stop(lt)
    finally:
        for p in reversed(procs):
            stop(p)
        if not args.keep_db:
            with contextlib.suppress(Exception):
                psql("postgres", f"drop database if exists {db}")

    if "tollgate" in targets:
        notes.insert(
            0,
            f"Tollgate: `{tollgate_bin}`, checkout {gateway.get('checkout', '?')} at "
            f"{gateway.get('commit', '?')}"
            + (f" (uncommitted changes in {gateway['dirty']})" if gateway.get("dirty") else "")
            + f"; {args.tenants} tenant(s)"
            + (" (one hot tenant)" if args.tenants == 1 else ", worker i uses tenant i mod N"),
        )
    report = render(levels_out, prof, notes, lt_version, args)
    print(report)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{args.name}.md").write_text(report)
    (results / f"{args.name}.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "tollgate": {"bin": tollgate_bin, **gateway, "tenants": args.tenants},
                "levels": [lv.__dict__ for lv in levels_out],
                "profile": prof,
                "notes": notes,
                "litellm_version": lt_version,
                "logs": str(logdir),
            },
            indent=2,
        )
    )
    log(f"wrote {results / args.name}.md and .json; logs in {logdir}")


if __name__ == "__main__":
    main()
