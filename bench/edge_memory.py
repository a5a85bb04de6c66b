"""Memory under unauthenticated abuse (issue 10, defect 3): does a `tollgate serve` process
stay within 50 MB of its idle RSS while it is sent

- three concurrent unauthenticated 200 MiB `POST /admin/tenants` bodies with a content-length,
- three more sent chunked (no length: the body is counted as it arrives),
- a 100 MB header flood (on each of four connections), and
- 300 slowloris connections (a header line, then nothing)?

It starts `tollgate serve` on a fresh database of the local Postgres (simulated upstream),
measures the idle RSS, resets the kernel's peak-RSS mark (/proc/PID/clear_refs), runs the
attacks, and reads the peak (VmHWM). Linux only.

    .venv/bin/python bench/edge_memory.py [--tollgate-bin .venv/bin/tollgate]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

PG = "postgresql://postgres@127.0.0.1:5432"
MIB = 1024 * 1024
ADMIN_TOKEN = "bench-edge-" + uuid.uuid4().hex


def psql(db: str, sql: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-c", sql],
        check=True,
        capture_output=True,
    )


def kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _send_until_refused(port: int, head: bytes, chunk: bytes, total: int) -> str:
    """Send `head`, then `chunk` until `total` bytes are sent or the server closes: an attacker
    who ignores the answer. Returns the status line and how much was sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(head)
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        sock.settimeout(30)
        try:
            answer = sock.recv(200)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    return f"{line or '(connection closed)'}; {sent / MIB:.1f} MiB sent"


def big_body(port: int, chunked: bool) -> str:
    head = b"POST /admin/tenants HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    if chunked:
        head += b"transfer-encoding: chunked\r\n\r\n"
        piece = b" " * 65536
        chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"
    else:
        head += b"content-length: %d\r\n\r\n" % (200 * MIB)
        chunk = b" " * 65536
    return _send_until_refused(port, head, chunk, 200 * MIB)


def header_flood(port: int) -> str:
    head = b"GET /healthz HTTP/1.1\r\nhost: x\r\n"
    line = b"x-flood: " + b"a" * 1000 + b"\r\n"
    return _send_until_refused(port, head, line * 64, 100 * 1000 * 1000)


def slowloris(port: int, count: int, wait_s: float) -> str:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
        socks.append(sock)
    deadline = time.monotonic() + wait_s
    closed = 0
    for sock in socks:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(OSError):
            data = sock.recv(200)
            if data.startswith(b"HTTP/1.1 408") or not data:
                closed += 1
        sock.close()
    return f"{closed} of {count} slow connections answered 408 and closed within {wait_s:.0f} s"


def run_all(port: int) -> list[str]:
    results: list[str] = []
    jobs = [lambda: big_body(port, chunked=False) for _ in range(3)]
    jobs += [lambda: big_body(port, chunked=True) for _ in range(3)]
    jobs += [lambda: header_flood(port) for _ in range(4)]

    def run(job: object) -> None:
        results.append(job())  # type: ignore[operator]

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    results.append(slowloris(port, 300, wait_s=40))
    for thread in threads:
        thread.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tollgate-bin", default=str(Path(sys.executable).parent / "tollgate"))
    args = parser.parse_args()
    db = "tollgate_bench_edge_" + uuid.uuid4().hex[:8]
    psql("postgres", f"create database {db}")
    data_dir = Path(tempfile.mkdtemp(prefix="tollgate-edge-"))
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{db}",
        "TOLLGATE_UPSTREAM": "simulated",
        "TOLLGATE_ADMIN_TOKEN": ADMIN_TOKEN,
        "TOLLGATE_DATA_DIR": str(data_dir),
        "TOLLGATE_LOG_LEVEL": "error",
    }
    env.pop("ANTHROPIC_API_KEY", None)
    port = free_port()
    proc = None
    try:
        subprocess.run([args.tollgate_bin, "migrate"], env=env, check=True, capture_output=True)
        proc = subprocess.Popen(
            [args.tollgate_bin, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        for _ in range(10):  # warm up the paths the attacks take (under the auth throttle)
            httpx.post(url + "/admin/tenants", content=b"{}", timeout=5)
        time.sleep(1)
        idle = kib(proc.pid, "VmRSS")
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # reset the peak (VmHWM)
        results = run_all(port)
        peak = kib(proc.pid, "VmHWM")
        alive = httpx.get(url + "/healthz", timeout=5).status_code
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        psql("postgres", f"drop database if exists {db} with (force)")
    report = {
        "idle_rss_mib": round(idle / 1024, 1),
        "peak_rss_mib": round(peak / 1024, 1),
        "peak_over_idle_mib": round((peak - idle) / 1024, 1),
        "healthz_after": alive,
        "attacks": sorted(results),
    }
    print(json.dumps(report, indent=2))
    if peak - idle > 50 * 1024:
        raise SystemExit("peak RSS rose more than 50 MB above idle")


if __name__ == "__main__":
    main()
