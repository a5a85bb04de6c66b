"""The CLI: one clear line for every mistake a person can make, and the commands that manage
tenants and keys."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg import asyncpg_dsn


def tollgate(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "TOLLGATE_", "ANTHROPIC_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_database_url_that_is_not_postgres_is_one_line() -> None:
    result = tollgate("migrate", env={"DATABASE_URL": "mysql://root@localhost/x"})
    assert result.returncode == 2
    line = one_line(result)
    assert "DATABASE_URL" in line and "Postgres" in line


@pytest.mark.parametrize(
    "url", ["postgresql://u@127.0.0.1:abc/x", "postgresql://u@[127.0.0.1/x", "postgresql://"]
)
def test_malformed_or_nameless_database_url_is_one_line_and_exit_2(url: str) -> None:
    # `postgresql://` used to migrate the OS user's default database; now nothing is touched.
    result = tollgate("migrate", env={"DATABASE_URL": url})
    assert result.returncode == 2
    assert one_line(result).startswith("tollgate: invalid configuration: DATABASE_URL ")
    assert "schema is up to date" not in result.stdout


def test_unreachable_database_is_one_line() -> None:
    result = tollgate("migrate", env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"})
    assert result.returncode == 1
    assert "cannot reach the database at 127.0.0.1:1/x" in one_line(result)


def test_port_in_use_is_one_line(database_url: str, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = tollgate(
            "serve",
            "--port",
            str(port),
            env={"DATABASE_URL": asyncpg_dsn(database_url), "TOLLGATE_DATA_DIR": str(tmp_path)},
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in one_line(result)


def test_bad_setting_value_names_the_variable() -> None:
    result = tollgate("migrate", env={"TOLLGATE_ON_DISCONNECT": "explode"})
    assert result.returncode == 2
    assert "TOLLGATE_ON_DISCONNECT" in one_line(result)


def test_tenant_and_key_commands(database_url: str) -> None:
    env = {"DATABASE_URL": asyncpg_dsn(database_url)}
    created = tollgate("tenant", "create", "Acme Inc", "--plan", "pro", env=env)
    assert created.returncode == 0, created.stderr
    tenant_id = created.stdout.strip()
    key = tollgate("key", "create", tenant_id, "--user", "u1", "--name", "ci", env=env)
    assert key.returncode == 0, key.stderr
    found = re.search(r"key:\s+(tg_live_\S+)", key.stdout)
    key_id = re.search(r"key id:\s+(\S+)", key.stdout)
    assert found and key_id
    assert "not shown again" in key.stdout
    revoked = tollgate("key", "revoke", key_id.group(1), env=env)
    assert revoked.returncode == 0 and f"revoked {key_id.group(1)} at 20" in revoked.stdout
    again = tollgate("key", "revoke", key_id.group(1), env=env)
    assert again.returncode == 1
    assert one_line(again).startswith(f"tollgate: key {key_id.group(1)} was already revoked at")
    listed = tollgate("key", "list", tenant_id, env=env)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == [
        "ID", "PREFIX", "NAME", "USER", "CREATED", "LAST", "USED", "EXPIRES", "REVOKED", "MODELS",
        "BUDGET",
    ]  # fmt: skip
    # id, prefix, name, user, created (date time), last used, expires, revoked (date time),
    # models, budget
    cells = row.split()
    assert cells[0] == key_id.group(1) and found.group(1).startswith(cells[1])
    assert cells[2:4] == ["ci", "u1"] and cells[6:8] == ["-", "-"] and cells[8].startswith("20")
    assert cells[10:] == ["-", "-"]
    assert found.group(1) not in listed.stdout
    taken = tollgate("tenant", "create", " Acme Inc ", env=env)
    assert taken.returncode == 1
    assert one_line(taken) == "tollgate: name: a tenant named 'Acme Inc' already exists"
    unknown = tollgate("tenant", "create", "X", "--plan", "platinum", env=env)
    assert unknown.returncode == 1 and "unknown plan" in one_line(unknown)


def test_help_lists_every_command() -> None:
    result = tollgate("--help")
    for command in ("dev", "serve", "migrate", "tenant", "key", "simulate-upstream"):
        assert command in result.stdout


@pytest.mark.parametrize("args", [["key", "create", "not-a-uuid"], ["key", "revoke", "nope"]])
def test_malformed_ids_are_refused_by_the_parser(args: list[str]) -> None:
    result = tollgate(*args)
    assert result.returncode == 2 and "not an id" in result.stderr
