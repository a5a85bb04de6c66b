"""The playground's JavaScript SSE parser, tested with node's own test runner
(tests/web/sse.test.mjs): a crafted stream cut at every byte, and a real /chat stream cut at
every byte compared with what Tollgate's Python scanner finds in it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from api.metering.sse import SSEScanner
from tests.support import Gateway, TenantKey

NODE = shutil.which("node")
ROOT = Path(__file__).resolve().parents[2]
TEST_FILE = "tests/web/sse.test.mjs"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")


def run_node(*args: str, env: dict[str, str] | None = None) -> str:
    assert NODE is not None
    done = subprocess.run(
        [NODE, "--test", *args, TEST_FILE],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_sse_parser_gives_the_same_events_at_every_split_point() -> None:
    out = run_node()
    assert "# fail 0" in out and "# pass 7" in out


async def test_the_sse_parser_reads_a_real_chat_stream_like_the_python_scanner(
    gateway: Gateway, tenant: TenantKey, tmp_path: Path
) -> None:
    raw = bytearray()
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=15) as http,
        http.stream(
            "POST",
            "/chat",
            json={"message": "Hello ünïcode 🙂", "user": "sse-test"},
            headers={"x-api-key": tenant.key, "x-sim-output-tokens": "40"},
        ) as response,
    ):
        assert response.status_code == 200
        async for chunk in response.aiter_raw():
            raw += chunk
    expected = [[name.decode(), data.decode()] for name, data in SSEScanner().feed(bytes(raw))]
    assert [name for name, _ in expected].count("delta") == 40
    sample, expected_path = tmp_path / "chat.sse", tmp_path / "chat.json"
    sample.write_bytes(raw)
    expected_path.write_text(json.dumps(expected))
    env = {"TOLLGATE_SSE_SAMPLE": str(sample), "TOLLGATE_SSE_EXPECTED": str(expected_path)}
    out = run_node("--test-name-pattern", "real /chat stream", env=env)
    ran = [line for line in out.splitlines() if line.startswith("ok ") and "real /chat" in line]
    assert len(ran) == 1 and "# SKIP" not in ran[0], out
