"""A closed-loop load generator for streaming `POST /v1/messages` (Anthropic Messages API).

C workers each hold one keep-alive HTTP/1.1 connection and send one streaming request after
another. The client is a minimal asyncio *Protocol* (no streams, no HTTP library) so that the
generator stays cheap: it shares a core with the simulated upstream in our benchmark.

Per request it measures, from the moment the request bytes are handed to the transport:

- `ttft`: time to the first body byte that completes the string `content_block_delta`, i.e. the
  first text token (the fair "first token": a gateway that sends `message_start` early but the
  tokens late is not rewarded);
- `ttfb`: time to the first response body byte (reported too, for reference);
- `total`: time to the end of the response body.

A request is an error when the status is not 200, the connection fails or closes early, or the
body ends without a `message_stop` event. After an error the connection is dropped and a new one
is opened.

Stop conditions: `--requests N` (total, across workers) and/or `--duration S` (no new request
is started after S seconds; in-flight requests are finished). `--warmup S` seconds of load are
sent first and excluded from the statistics (but counted in `sent_total` / `ok_total`, which is
what a ledger check must compare against).

Keys: `--key K` sends one key on every request. `--keys-file FILE` (one key per line) spreads the
load over several keys, and so over several tenants: worker i sends key i mod N on every request.

Output: a human summary, or `--json` (one JSON object on stdout). With `--markers` the lines
`#MEASURE_START` and `#MEASURE_END` are printed (flushed) around the measured window so that an
orchestrator can sample the server's CPU over exactly that window.

`--api openai` speaks OpenAI's chat.completions instead (for `/v1/chat/completions` on Tollgate,
`/chat/completions` on LiteLLM): the body has `stream_options.include_usage`, the key goes in
`Authorization: Bearer`, no `anthropic-version` is sent, the first token is the first chunk whose
delta starts with `"content"`, and a complete stream ends with `data: [DONE]`.

Usage:
  python bench/loadgen.py --url http://127.0.0.1:8000/v1/messages --key tg_live_... \
      --concurrency 32 --duration 10 --warmup 2 --json
  python bench/loadgen.py --api openai --url http://127.0.0.1:8000/v1/chat/completions ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from streamconn import MARKERS, Conn, Result, perf


@dataclass
class Stats:
    sent_total: int = 0  # including warm-up
    ok_total: int = 0  # 200 + message_stop, including warm-up
    http200_total: int = 0  # status 200 (even if the stream was cut), including warm-up
    statuses: dict[int, int] = field(default_factory=dict)  # HTTP status -> count, incl. warm-up
    ttft: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    ok: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    conn_errors: int = 0
    warmup_errors: int = 0


def build_request(
    host: str,
    path: str,
    key: str,
    model: str,
    tokens: int,
    extra: list[str],
    api: str = "anthropic",
) -> bytes:
    fields: dict[str, object] = {
        "model": model,
        "max_tokens": tokens,
        "stream": True,
        "messages": [{"role": "user", "content": "Say hello."}],
    }
    if api == "openai":
        fields["stream_options"] = {"include_usage": True}
        auth = [f"Authorization: Bearer {key}"]
    else:
        auth = [f"x-api-key: {key}", "anthropic-version: 2023-06-01"]
    body = json.dumps(fields, separators=(",", ":")).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        f"Content-Length: {len(body)}",
        *auth,
        f"x-sim-output-tokens: {tokens}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_keys(path: str) -> list[str]:
    keys = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    if not keys:
        raise SystemExit(f"{path}: no keys")
    return keys


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


async def run(args: argparse.Namespace) -> dict[str, object]:
    url = urlsplit(args.url)
    host = url.hostname or "127.0.0.1"
    port = url.port or 80
    path = url.path or "/v1/messages"
    keys = read_keys(args.keys_file) if args.keys_file else [args.key]
    payloads = [
        build_request(f"{host}:{port}", path, k, args.model, args.tokens, args.header, args.api)
        for k in keys
    ]
    loop = asyncio.get_running_loop()
    stats = Stats()

    t_start = perf()
    warm_end = t_start + args.warmup
    measure_start = [t_start if args.warmup <= 0 else 0.0]
    measure_end = [0.0]
    deadline = [float("inf")]
    if args.duration and args.warmup <= 0:
        deadline[0] = t_start + args.duration
    budget = [args.requests if args.requests else -1]  # measured requests left to start
    in_warmup = [args.warmup > 0]

    def mark(name: str) -> None:
        if args.markers:
            sys.stdout.write(f"#{name}\n")
            sys.stdout.flush()

    if not in_warmup[0]:
        mark("MEASURE_START")

    async def connect() -> Conn:
        _, proto = await loop.create_connection(lambda: Conn(args.api), host, port)
        return proto  # type: ignore[return-value]

    async def worker(index: int) -> None:
        payload = payloads[index % len(payloads)]
        conn: Conn | None = None
        while True:
            now = perf()
            if in_warmup[0] and now >= warm_end:
                in_warmup[0] = False
                measure_start[0] = now
                if args.duration:
                    deadline[0] = now + args.duration
                mark("MEASURE_START")
            measuring = not in_warmup[0]
            if measuring:
                if now >= deadline[0] or budget[0] == 0:
                    break
                if budget[0] > 0:
                    budget[0] -= 1
            try:
                if conn is None or conn.closed:
                    conn = await connect()
                stats.sent_total += 1
                res = await conn.request(payload)
            except OSError as exc:
                stats.conn_errors += 1
                res = Result(error=f"connect: {exc.__class__.__name__}")
                conn = None
                await asyncio.sleep(0.01)
            stats.statuses[res.status] = stats.statuses.get(res.status, 0) + 1
            if res.status == 200:
                stats.http200_total += 1
            if res.ok:
                stats.ok_total += 1
            if measuring:
                if res.ok:
                    stats.ok += 1
                    stats.ttft.append(res.t_ttft)
                    stats.ttfb.append(res.t_ttfb)
                    stats.total.append(res.t_total)
                else:
                    stats.errors += 1
                    kind = res.error.split(":")[0]
                    stats.error_kinds[kind] = stats.error_kinds.get(kind, 0) + 1
                    if args.verbose_errors and stats.errors <= 5:
                        print(f"error: {res.error}", file=sys.stderr)
            elif not res.ok:
                stats.warmup_errors += 1
                kind = "warmup " + res.error.split(":")[0]
                stats.error_kinds[kind] = stats.error_kinds.get(kind, 0) + 1
            if conn is not None and (conn.closed or not res.ok):
                if conn.transport is not None:
                    conn.transport.close()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    measure_end[0] = perf()
    mark("MEASURE_END")
    elapsed = measure_end[0] - measure_start[0]
    ms = 1000.0
    return {
        "url": args.url,
        "concurrency": args.concurrency,
        "elapsed_s": round(elapsed, 3),
        "requests": stats.ok + stats.errors,
        "ok": stats.ok,
        "errors": stats.errors,
        "warmup_errors": stats.warmup_errors,
        "error_kinds": stats.error_kinds,
        "rps": round(stats.ok / elapsed, 1) if elapsed > 0 else 0.0,
        "ttft_p50_ms": round(percentile(stats.ttft, 50) * ms, 3),
        "ttft_p99_ms": round(percentile(stats.ttft, 99) * ms, 3),
        "ttfb_p50_ms": round(percentile(stats.ttfb, 50) * ms, 3),
        "ttfb_p99_ms": round(percentile(stats.ttfb, 99) * ms, 3),
        "total_p50_ms": round(percentile(stats.total, 50) * ms, 3),
        "total_p99_ms": round(percentile(stats.total, 99) * ms, 3),
        "sent_total": stats.sent_total,
        "ok_total": stats.ok_total,
        "http200_total": stats.http200_total,
        "statuses": {str(k): v for k, v in sorted(stats.statuses.items())},
        "keys": len(keys),
        "keys_used": min(len(keys), args.concurrency),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8000/v1/messages")
    p.add_argument(
        "--key", default="sk-ant-bench", help="sent as x-api-key (Bearer with --api openai)"
    )
    p.add_argument(
        "--keys-file", help="one key per line; worker i sends key i mod N (overrides --key)"
    )
    p.add_argument("--model", default="claude-sonnet-4-6")
    p.add_argument(
        "--api",
        choices=sorted(MARKERS),
        default="anthropic",
        help="anthropic: Messages API (default); openai: chat.completions",
    )
    p.add_argument("--tokens", type=int, default=64, help="max_tokens and x-sim-output-tokens")
    p.add_argument("-c", "--concurrency", type=int, default=1)
    p.add_argument("-n", "--requests", type=int, default=0, help="measured requests (0: no limit)")
    p.add_argument("-d", "--duration", type=float, default=0, help="measured seconds (0: no limit)")
    p.add_argument("--warmup", type=float, default=0, help="seconds of unmeasured load first")
    p.add_argument("-H", "--header", action="append", default=[], help="extra 'Name: value'")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--markers", action="store_true", help="print #MEASURE_START/#MEASURE_END")
    p.add_argument("--verbose-errors", action="store_true")
    p.add_argument("--no-uvloop", action="store_true")
    args = p.parse_args(argv)
    if not args.requests and not args.duration:
        p.error("give --requests and/or --duration")
    if not args.no_uvloop:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
    out = asyncio.run(run(args))
    if args.json:
        print(json.dumps(out))
        return
    print(
        f"c={out['concurrency']} {out['ok']} ok, {out['errors']} errors in {out['elapsed_s']} s: "
        f"{out['rps']} req/s; TTFT p50 {out['ttft_p50_ms']} ms p99 {out['ttft_p99_ms']} ms; "
        f"TTFB p50 {out['ttfb_p50_ms']} ms; total p50 {out['total_p50_ms']} ms "
        f"p99 {out['total_p99_ms']} ms"
    )
    if out["error_kinds"]:
        print(f"errors: {out['error_kinds']}")


if __name__ == "__main__":
    main()
