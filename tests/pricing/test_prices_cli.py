"""`tollgate prices import | list | export` against a real database, as a person runs them."""

from __future__ import annotations

import json
from pathlib import Path

from api.pricing.book import parse_file, shipped_text
from tests.pg import asyncpg_dsn
from tests.test_cli import one_line, tollgate

SHIPPED = Path(__file__).resolve().parents[2] / "api" / "pricing" / "prices.json"


def test_import_is_idempotent_and_export_round_trips(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": asyncpg_dsn(database_url)}
    versions = len(parse_file(shipped_text()))
    first = tollgate("prices", "import", str(SHIPPED), env=env)
    assert first.returncode == 0, first.stderr
    assert f"added {versions} versions, 0 already stored, 0 conflicts" in first.stdout
    again = tollgate("prices", "import", str(SHIPPED), env=env)
    assert f"added 0 versions, {versions} already stored, 0 conflicts" in again.stdout

    listed = tollgate("prices", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    [opus] = [line for line in listed.stdout.splitlines() if line.startswith("claude-opus-4-8 ")]
    assert opus.split()[2:7] == ["5", "25", "6.25", "10", "0.5"] and "fast x2" in opus

    exported = tollgate("prices", "export", env=env)
    assert exported.returncode == 0, exported.stderr
    assert len(json.loads(exported.stdout)["models"]) == versions
    path = tmp_path / "export.json"
    path.write_text(exported.stdout)
    back = tollgate("prices", "import", str(path), env=env)
    assert f"added 0 versions, {versions} already stored" in back.stdout

    changed = json.loads(exported.stdout)
    changed["models"][0]["input"] = "123"
    path.write_text(json.dumps(changed))
    conflict = tollgate("prices", "import", str(path), env=env)
    assert conflict.returncode == 1 and "conflict:" in conflict.stdout
    bad = tmp_path / "bad.json"
    entry = {"model": "m", "effective_from": "2026-01-01", "input": "x", "output": "1"}
    bad.write_text(json.dumps({"models": [entry]}))
    refused = tollgate("prices", "import", str(bad), env=env)
    assert refused.returncode == 1 and "price of m: input" in one_line(refused)
