"""One measured level (`Level`) and the report of a run: the table, the ratios between
targets and rounds, and the profile summary (Markdown)."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import psutil

GATEWAY_CORE = "0"  # where run.py pins the gateway (and, with --pin-postgres, Postgres)
CLIENT_CORE = "1"  # the simulator and the load generator


@dataclass
class Level:
    target: str
    concurrency: int
    result: dict[str, object]
    server_cpu_pct: float
    server_peak_rss_mb: float
    server_rss_after_mb: float
    client_cpu_pct: float  # the load generator
    sim_cpu_pct: float  # the simulator (shares core 1 with the load generator)
    pg_cpu_pct: float  # the whole Postgres cluster (not pinned)
    pg_db_cpu_pct: float  # live backends of the bench database only
    # busy time of both cores not explained by the server, generator, simulator or Postgres:
    # other work on the machine (another agent's tests), i.e. interference
    other_cpu_pct: float
    core_busy_pct: list[float]  # per CPU, system-wide
    ledger: dict[str, object] = field(default_factory=dict)
    pg_waits: dict[str, object] = field(default_factory=dict)
    # pg_stat_statements over the measured window, per completed request: all, admission
    pg_statements_per_request: tuple[float, float] | None = None
    round: int = 0  # with --rounds: which round of Tollgate's Messages/chat.completions pair


def cpu_per_request_ms(lv: Level) -> str:
    """The server's CPU seconds over the measured window per completed request, in ms."""
    rps = float(lv.result["rps"])  # type: ignore[arg-type]
    if rps <= 0:
        return "—"
    return f"{10 * lv.server_cpu_pct / rps:.2f}"


_RATIOS = (
    ("tollgate", "litellm", "Tollgate / LiteLLM throughput (Messages)", "x"),
    ("tollgate-openai", "litellm-openai", "Tollgate / LiteLLM throughput (chat.completions)", "x"),
    ("tollgate-openai", "tollgate", "Tollgate chat.completions / Messages throughput", "%"),
    ("litellm-openai", "litellm", "LiteLLM chat.completions / Messages throughput", "%"),
)


def throughput_ratios(levels: list[Level]) -> list[str]:
    """One line per pair of targets that both ran: their req/s ratio at each level."""
    by = {(lv.target, lv.concurrency): float(lv.result["rps"]) for lv in levels}  # type: ignore[arg-type]
    lines: list[str] = []
    for top, bottom, title, unit in _RATIOS:
        shown = [
            f"c={c}: "
            + (
                f"{by[top, c] / by[bottom, c]:.1f}x"
                if unit == "x"
                else f"{100 * by[top, c] / by[bottom, c]:.0f}%"
            )
            for (t, c) in sorted(by)
            if t == top and by.get((bottom, c))
        ]
        if shown:
            lines.append(f"{title}: " + ", ".join(shown))
    # Under interference (other work on the machine) a gateway gets less than its core, so
    # also compare requests per second of the gateway's own CPU.
    per_cpu = {
        (lv.target, lv.concurrency): float(lv.result["rps"]) / (lv.server_cpu_pct / 100)  # type: ignore[arg-type]
        for lv in levels
        if lv.server_cpu_pct > 0
    }
    shown = [
        f"c={c}: {100 * per_cpu[t, c] / per_cpu['tollgate', c]:.0f}%"
        for (t, c) in sorted(per_cpu)
        if t == "tollgate-openai" and per_cpu.get(("tollgate", c))
    ]
    if shown:
        lines.append(
            "Tollgate chat.completions / Messages, requests per second of gateway CPU: "
            + ", ".join(shown)
        )
    return ["", *lines, *round_ratios(levels)] if lines else []


def round_ratios(levels: list[Level]) -> list[str]:
    """With --rounds: Tollgate's chat.completions / Messages ratio in each round, then their mean
    and spread (c=1 is latency-bound and noisy, so one pair says little), for throughput and for
    requests per second of gateway CPU."""
    rounds = sorted({lv.round for lv in levels})
    if len(rounds) < 2:
        return []
    rps = {(lv.target, lv.concurrency, lv.round): float(lv.result["rps"]) for lv in levels}  # type: ignore[arg-type]
    per_cpu = {
        (lv.target, lv.concurrency, lv.round): float(lv.result["rps"]) / (lv.server_cpu_pct / 100)  # type: ignore[arg-type]
        for lv in levels
        if lv.server_cpu_pct > 0
    }
    lines: list[str] = []
    for title, by in (("throughput", rps), ("requests per second of gateway CPU", per_cpu)):
        lines += ["", f"Tollgate chat.completions / Messages {title}, per round (interleaved):"]
        for c in sorted({lv.concurrency for lv in levels}):
            ratios = [
                100 * by["tollgate-openai", c, n] / by["tollgate", c, n]
                for n in rounds
                if by.get(("tollgate", c, n)) and ("tollgate-openai", c, n) in by
            ]
            if len(ratios) < 2:
                continue
            each = ", ".join(f"{r:.0f}%" for r in ratios)
            lines.append(
                f"- c={c}: {each}; mean {statistics.mean(ratios):.1f}%, stdev "
                f"{statistics.stdev(ratios):.1f}, min {min(ratios):.0f}%, max {max(ratios):.0f}%"
            )
    return lines


def render(
    levels: list[Level],
    prof: dict | None,
    notes: list[str],
    lt_version: str | None,
    args: argparse.Namespace,
) -> str:
    m = machine()
    direct = {lv.concurrency: lv for lv in levels if lv.target == "direct"}
    lines = [
        f"Machine: {m['nproc']} cores, {m['cpu']}, {m['memory']} RAM, Linux {m['kernel']}, "
        f"Python {m['python']}. Gateway on core {GATEWAY_CORE}; simulator + load generator on "
        f"core {CLIENT_CORE}; Postgres "
        + (f"pinned to core {GATEWAY_CORE}" if args.pin_postgres else "not pinned")
        + f". {args.tokens}-token streams, "
        + (f"{args.token_delay_ms} ms apart. " if args.token_delay_ms else "no simulated delays. ")
        + f"{args.duration:g} s per level after {args.warmup:g} s warm-up "
        f"(c=1: at most {args.c1_requests} requests)."
        + (f" LiteLLM {lt_version}." if lt_version else ""),
        "",
        "| target | C | req/s | TTFT p50 ms | TTFT p99 ms | added TTFT p50 | total p99 ms "
        "(x direct) | errors "
        "| server CPU | server CPU per request | server peak RSS | Postgres CPU (bench db) "
        "| other CPU | core 0 / core 1 busy | ledger ok / expected | new PG sessions "
        "| PG statements / request (admission) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    rounds = any(lv.round for lv in levels)
    for lv in levels:
        r = lv.result
        d = direct.get(lv.concurrency)
        added = "—"
        if d and lv.target != "direct":
            delta = float(r["ttft_p50_ms"]) - float(d.result["ttft_p50_ms"])  # type: ignore[arg-type]
            added = f"+{delta:.2f} ms"
        total = f"{r['total_p99_ms']}"
        if d and lv.target != "direct" and float(d.result["total_p99_ms"]):  # type: ignore[arg-type]
            ratio = float(r["total_p99_ms"]) / float(d.result["total_p99_ms"])  # type: ignore[arg-type]
            total += f" ({ratio:.2f}x)"
        ledger = "—"
        sessions = lv.ledger.get("new_pg_sessions", "—") if lv.ledger else "—"
        if lv.ledger:
            ledger = f"{lv.ledger['ok_rows']} / {lv.ledger['expected_ok']}"
            if lv.ledger["lost"]:
                ledger += f" (**{lv.ledger['lost']} lost**)"
            if lv.ledger.get("refused"):
                ledger += f" (**{lv.ledger['refused']} refused**: {lv.ledger['http_statuses']})"
        errs = f"{r['errors']}" + (
            f" (+{r['warmup_errors']} warm-up)" if r["warmup_errors"] else ""
        )
        busy = " / ".join(f"{x:.0f}%" for x in lv.core_busy_pct[:2])
        per_req = lv.pg_statements_per_request
        stmts = f"{per_req[0]:.3f} ({per_req[1]:.3f})" if per_req else "—"
        lines.append(
            f"| {lv.target}{f' #{lv.round + 1}' if rounds else ''} | {lv.concurrency} "
            f"| {float(r['rps']):,.0f} | {r['ttft_p50_ms']} "  # type: ignore[arg-type]
            f"| {r['ttft_p99_ms']} | {added} | {total} | {errs} | {lv.server_cpu_pct:.0f}% "
            f"| {cpu_per_request_ms(lv)} ms | {lv.server_peak_rss_mb:.0f} MB "
            f"| {lv.pg_cpu_pct:.0f}% ({lv.pg_db_cpu_pct:.0f}%) "
            f"| {lv.other_cpu_pct:.0f}% | {busy} | {ledger} "
            f"| {sessions} | {stmts} |"
        )
    lines += throughput_ratios(levels)
    if prof:
        pc = prof.get("concurrency", 32)
        lines += ["", f"py-spy, Tollgate under c={pc} (own time, top 15):", ""]
        if "error" in prof:
            lines.append(f"profile failed: {prof['error']}")
        else:
            lines.append(
                f"{prof['samples']} samples; {prof['rps_under_profiler']} req/s under the profiler"
            )
            lines.append("")
            lines.append("| own % | function (file) |")
            lines.append("|---:|---|")
            for name, _n, pct in prof["own_top"][:15]:
                lines.append(f"| {pct} | `{name}` |")
    waits = [lv for lv in levels if lv.pg_waits]
    if waits:
        lines += ["", "Postgres backends of the bench database, mean per sample (state wait):", ""]
        for lv in waits:
            top = lv.pg_waits.get("mean_backends", {})
            shown = ", ".join(f"{k} {v}" for k, v in list(top.items())[:8])  # type: ignore[union-attr]
            lines.append(f"- {lv.target} c={lv.concurrency}: {shown}")
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def machine() -> dict[str, str]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem / 2**30:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
