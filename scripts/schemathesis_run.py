"""`make schemathesis`: the OpenAPI contract, checked against a running Tollgate.

Starts `tollgate serve` on a fresh database of the local Postgres (DATABASE_URL's server, or
postgresql://postgres@127.0.0.1:5432), with the simulated upstream and an admin token, creates
a tenant and a key, and runs `schemathesis run --checks all` against /openapi.json with both
credentials. The exit code is schemathesis's: 0 means no server error and no mismatch between
the document and what the service answered.

    .venv/bin/python scripts/schemathesis_run.py [-- extra schemathesis arguments]
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    return url.rsplit("/", 1)[0]


def _psql(server: str, sql: str) -> None:
    subprocess.run(["psql", f"{server}/postgres", "-c", sql], check=True, capture_output=True)


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str) -> None:
    for _ in range(300):
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit("tollgate serve did not start")


def main(extra: list[str]) -> int:
    server = _server_url()
    db = "tollgate_schemathesis_" + uuid.uuid4().hex[:8]
    admin = "st-admin-" + uuid.uuid4().hex
    env = {
        **os.environ,
        "DATABASE_URL": f"{server}/{db}",
        "TOLLGATE_UPSTREAM": "simulated",
        "TOLLGATE_ADMIN_TOKEN": admin,
        "TOLLGATE_DATA_DIR": tempfile.mkdtemp(prefix="tollgate-st-"),
        "TOLLGATE_LOG_LEVEL": "warning",
        # schemathesis sends many requests with bad credentials on purpose
        "TOLLGATE_AUTH_FAILURES_PER_MINUTE": "100000",
    }
    env.pop("ANTHROPIC_API_KEY", None)
    _psql(server, f"create database {db}")
    port = _free_port()
    proc = None
    try:
        tollgate = str(BIN / "tollgate")
        subprocess.run([tollgate, "migrate"], env=env, check=True, capture_output=True)
        out = subprocess.run(
            [tollgate, "tenant", "create", "contract", "--plan", "pro"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        key_out = subprocess.run(
            [tollgate, "key", "create", out.splitlines()[-1]],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        key = next(line.split()[-1] for line in key_out.splitlines() if line.startswith("key:"))
        proc = subprocess.Popen([tollgate, "serve", "--port", str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
        _wait(url)
        command = [
            str(BIN / "schemathesis"), "run", f"{url}/openapi.json",
            "--checks", "all",
            "-H", f"x-api-key: {key}",
            "-H", f"authorization: Bearer {admin}",
            "--max-examples", "30",
            *extra,
        ]  # fmt: skip
        return subprocess.run(command, env=env).returncode
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        _psql(server, f"drop database if exists {db} with (force)")


if __name__ == "__main__":
    sys.exit(main([a for a in sys.argv[1:] if a != "--"]))
