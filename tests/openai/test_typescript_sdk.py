"""The official OpenAI TypeScript SDK against /v1/chat/completions (needs node and npm; the SDK
is installed from tests/sdk_ts/package-lock.json into a temporary directory)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Gateway, TenantKey, settled_rows

HERE = Path(__file__).resolve().parent.parent / "sdk_ts"


@pytest.fixture(scope="session")
def openai_ts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    target = tmp_path_factory.mktemp("sdk_ts_openai")
    for name in ("package.json", "package-lock.json", "openai_stream.mjs"):
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


async def test_openai_typescript_sdk_streams_and_calls_tools(
    openai_ts_dir: Path, gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    proc = await asyncio.create_subprocess_exec(
        "node",
        "openai_stream.mjs",
        gateway.url,
        tenant.key,
        cwd=openai_ts_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    rows = await settled_rows(engine, 2)
    assert result["text"] and result["finish"] == "length"
    assert result["usage"]["completion_tokens"] == rows[0]["output_tokens"] == 64
    assert result["usage"]["prompt_tokens"] == rows[0]["input_tokens"]
    assert (result["tool"], result["args"]) == ("get_weather", {"city": "simulated"})
    assert [r["endpoint"] for r in rows] == ["chat_completions"] * 2
    assert [r["status"] for r in rows] == ["ok", "ok"]
