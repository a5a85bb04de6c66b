"""Logs are JSON lines, from `tollgate serve` and from every `serve --workers N` worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.pg import asyncpg_dsn
from tests.support import free_port


def _records(log: Path) -> list[dict[str, object]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # a bare-text line fails here


def test_every_worker_logs_json_lines_at_info(database_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOLLGATE_", "ANTHROPIC_"))}
    env |= {"DATABASE_URL": asyncpg_dsn(database_url), "TOLLGATE_DATA_DIR": str(tmp_path)}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--workers", "2", "--port", str(free_port())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while log.read_text().count("Application startup complete") < 2:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    records = _records(log)
    started = {r["msg"] for r in records if str(r["msg"]).startswith("Started server process")}
    assert len(started) == 2, records  # one INFO line per worker, each its own pid
    assert all(r["level"] == "info" for r in records if r["msg"] in started)
