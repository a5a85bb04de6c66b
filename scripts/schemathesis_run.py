"""`make schemathesis`: the OpenAPI contract, checked against a running Tollgate.

Starts `tollgate serve` on a fresh database of the local Postgres (DATABASE_URL's server, or
postgresql://postgres@127.0.0.1:5432), with the simulated upstream, an admin token and the
Razorpay variables unset (billing off: its routes answer their documented 503). Creates a plan
with room to spare, a tenant on it and a key, and runs `schemathesis run --checks all` against
/openapi.json in two passes, each credential given to the security scheme the document names
(TenantKey, AdminToken):

1. the tenant routes (`/v1/…`, `/chat`), with the key;
2. every other route. The admin routes may suspend the tenant, revoke its key or spend its
   budget, so they run after the tenant routes have had the key to themselves.

The exit code is 0 only when both passes found no server error and no mismatch between the
document and what the service answered.

    .venv/bin/python scripts/schemathesis_run.py [-- extra schemathesis arguments]
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
TENANT_ROUTES = "^/(v1/|chat$)"
_RAZORPAY = ("RAZORPAY_KEY_ID", "RAZORPAY_KEY_SECRET", "RAZORPAY_WEBHOOK_SECRET")


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


def _tenant_key(url: str, admin: str) -> str:
    """A key of a tenant on a plan no test run can spend or throttle."""
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {admin}"}) as http:
        plan = {"monthly_budget_usd": "9000000000", "rpm_limit": 10**6, "max_concurrent": 1000}
        http.put("/admin/plans/contract", json=plan).raise_for_status()
        tenant = http.post("/admin/tenants", json={"name": "contract", "plan": "contract"})
        tenant.raise_for_status()
        key = http.post(f"/admin/tenants/{tenant.json()['id']}/keys", json={"name": "contract"})
        key.raise_for_status()
        return str(key.json()["key"])


def _config(directory: str, key: str, admin: str) -> str:
    path = Path(directory) / "schemathesis.toml"
    path.write_text(
        "[output.sanitization]\nenabled = false\n\n"  # a throwaway database's credentials
        f'[auth.openapi.TenantKey]\napi_key = "{key}"\n\n'
        f'[auth.openapi.AdminToken]\nbearer = "{admin}"\n\n'
        # Billing is off in this run by design: these two routes answer their documented 503.
        "[[operations]]\n"
        'include-path-regex = "^/webhooks/razorpay$|/subscription$"\n'
        'checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]\n'
    )
    return str(path)


def _pass(config: str, url: str, scope: list[str], extra: list[str]) -> tuple[int, str]:
    command = [
        str(BIN / "schemathesis"), "--config-file", config, "run", f"{url}/openapi.json",
        "--checks", "all", "--max-examples", "30", *scope, *extra,
    ]  # fmt: skip
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
    }
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    summary = re.search(r"^\s*(\d+) generated.*$", done.stdout, re.MULTILINE)
    return done.returncode, summary.group(0).strip() if summary else "no summary"


def main(extra: list[str]) -> int:
    server = _server_url()
    db = "tollgate_schemathesis_" + uuid.uuid4().hex[:8]
    admin = "st-admin-" + uuid.uuid4().hex
    env = {
        **{k: v for k, v in os.environ.items() if k not in _RAZORPAY},
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
        proc = subprocess.Popen([tollgate, "serve", "--port", str(port)], env=env)
        url = f"http://127.0.0.1:{port}"
        _wait(url)
        config = _config(env["TOLLGATE_DATA_DIR"], _tenant_key(url, admin), admin)
        passes = [
            ("tenant routes", ["--include-path-regex", TENANT_ROUTES]),
            ("other routes", ["--exclude-path-regex", TENANT_ROUTES]),
        ]
        results = [(name, *_pass(config, url, scope, extra)) for name, scope in passes]
        for name, code, summary in results:
            print(f"schemathesis {name}: exit {code}; {summary}")
        return max(code for _, code, _ in results)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        _psql(server, f"drop database if exists {db} with (force)")


if __name__ == "__main__":
    sys.exit(main([a for a in sys.argv[1:] if a != "--"]))
