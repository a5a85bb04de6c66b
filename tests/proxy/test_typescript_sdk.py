"""The official TypeScript SDK streams through Tollgate unchanged (needs node and npm; the SDK
is installed from tests/sdk_ts/package-lock.json into a temporary directory)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Gateway, TenantKey, settled_rows

HERE = Path(__file__).resolve().parent.parent / "sdk_ts"


@pytest.fixture(scope="session")
def ts_sdk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    target = tmp_path_factory.mktemp("sdk_ts")
    for name in ("package.json", "package-lock.json", "stream.mjs"):
        shutil.copy(HERE / name, target / name)
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if result.returncode != 0:
        pytest.skip(f"npm could not install the SDK here: {result.stderr.strip()[:200]}")
    return target


async def test_typescript_sdk_streams_and_its_usage_equals_the_ledger(
    ts_sdk_dir: Path, gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        "node",
        "stream.mjs",
        gateway.url,
        tenant.key,
        cwd=ts_sdk_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    [row] = await settled_rows(engine, 1)
    assert result["text"]
    assert result["usage"]["output_tokens"] == row["output_tokens"] == 64
    assert result["usage"]["input_tokens"] == row["input_tokens"]
    assert row["status"] == "ok"
