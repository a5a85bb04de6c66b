"""A client that hangs up mid-stream on /v1/chat/completions, against a real `tollgate serve`
process, is billed exactly like one on /v1/messages: `drain` bills the whole completion,
`close` what was seen; one `client_disconnected` row either way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.pg import asyncpg_dsn
from tests.support import ServeProcess, TenantKey, settled_rows, spawn_serve

BODY = {
    "model": "claude-sonnet-4-6",
    "max_completion_tokens": 200,
    "stream": True,
    "stream_options": {"include_usage": True},
    "messages": [{"role": "user", "content": "tell me a long story"}],
}
KNOBS = {"x-sim-output-tokens": "200", "x-sim-token-delay-ms": "10"}


@pytest.fixture(params=["drain", "close"])
def serve(
    request: pytest.FixtureRequest, database_url: str, simulator: str, tmp_path: Path
) -> Iterator[tuple[str, ServeProcess]]:
    mode = str(request.param)
    env = {
        "DATABASE_URL": asyncpg_dsn(database_url),
        "TOLLGATE_UPSTREAM": "simulated",
        "ANTHROPIC_BASE_URL": simulator,
        "TOLLGATE_ON_DISCONNECT": mode,
        "TOLLGATE_DATA_DIR": str(tmp_path / "data"),
    }
    proc = spawn_serve(env, tmp_path / "serve.log")
    try:
        yield mode, proc
    finally:
        proc.stop()


async def test_client_hang_up_mid_stream_is_billed_like_messages(
    serve: tuple[str, ServeProcess], tenant: TenantKey, engine: AsyncEngine
) -> None:
    mode, proc = serve
    deltas = 0
    headers = {"authorization": f"Bearer {tenant.key}", **KNOBS}
    async with (
        httpx.AsyncClient(base_url=proc.url, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", json=BODY, headers=headers) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                deltas += bool(chunk["choices"] and chunk["choices"][0]["delta"].get("content"))
            if deltas == 20:
                break  # leaving the block closes the connection mid-stream
    [row] = await settled_rows(engine, 1, timeout_s=60)
    assert row["status"] == "client_disconnected" and row["endpoint"] == "chat_completions"
    assert row["input_tokens"] > 0
    if mode == "drain":
        assert row["output_tokens"] == 200  # read to the end: the exact usage
    else:
        assert 20 <= row["output_tokens"] < 200  # stopped early: what was seen
    assert row["cost_usd"] > 0
