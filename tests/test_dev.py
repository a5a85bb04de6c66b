"""`tollgate dev` on a machine with nothing configured: embedded Postgres, simulated upstream,
a demo key and a curl line that streams; stopped and started again, everything is still there."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support import free_port


@contextlib.contextmanager
def dev_server(data_dir: Path, port: int) -> Iterator[tuple[str, str]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "TOLLGATE_", "ANTHROPIC_"))
    }
    env["TOLLGATE_DATA_DIR"] = str(data_dir)
    log = data_dir.parent / f"dev-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "dev", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        banner = ""
        while "curl" not in banner:
            assert proc.poll() is None and time.monotonic() < deadline, banner
            time.sleep(0.2)
            banner = log.read_text()
        # The banner is printed only once the socket accepts: its URL must answer right away.
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
        curl = next(line.strip() for line in banner.splitlines() if line.strip().startswith("curl"))
        yield curl, banner
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode in (0, 130), log.read_text()  # 130: interrupted, as Ctrl-C is


def run_curl(curl: str) -> str:
    # The printed line is meant for a shell; run it through one, as a newcomer would.
    return subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30).stdout


def postgres_running(data_dir: Path) -> bool:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return any(str(data_dir / "pg") in line and "postgres" in line for line in out.splitlines())


def test_dev_streams_the_demo_curl_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "tollgate-data"
    port = free_port()
    with dev_server(data_dir, port) as (curl, banner):
        key = re.search(r"demo key:\s+(tg_live_\S+)", banner)
        assert key is not None
        assert "the CLI:" in banner and "tollgate --help" in banner
        first = run_curl(curl)
        assert "event: delta" in first and "event: usage" in first and "event: done" in first
    assert not postgres_running(data_dir)  # stopped cleanly on exit

    with dev_server(data_dir, port) as (curl_again, banner_again):
        assert key.group(1) in banner_again  # same tenant, same key
        second = run_curl(curl_again)
        assert "event: done" in second
        usage = httpx.post(
            f"http://127.0.0.1:{port}/v1/messages",
            headers={"x-api-key": key.group(1)},
            json={
                "model": "claude-haiku-4-5",
                "max_tokens": 3,
                "messages": [{"role": "user", "content": "hi"}],
            },
            timeout=10,
        )
        assert usage.status_code == 200
    # Both runs' ledger rows are in the one embedded database, which outlived the restarts.
    from pgserver import get_server

    server = get_server(data_dir / "pg")
    try:
        out = server.psql(
            "\\c tollgate\nSELECT 'rows=' || count(*) FROM usage_ledger WHERE status = 'ok';"
        )
    finally:
        server.cleanup()
    assert "rows=3" in out, out


def test_dev_on_a_busy_port_is_one_line_and_no_banner(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "TOLLGATE_", "ANTHROPIC_"))
    }
    env["TOLLGATE_DATA_DIR"] = str(tmp_path / "data")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "api", "dev", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stdout == ""  # no banner, no curl line for someone else's port
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines == [
        f"tollgate: port {port} on 127.0.0.1 is already in use (choose another with --port)"
    ]
    assert not (tmp_path / "data" / "pg").exists()  # nothing was started
