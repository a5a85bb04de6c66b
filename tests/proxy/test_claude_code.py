"""Claude Code (npm `@anthropic-ai/claude-code`, pinned in tests/claude_code/package-lock.json)
works through Tollgate with its DEFAULT settings, and what it says it cost equals the ledger.

Needs node and npm. The CLI (~400 MB with its native binary) is installed once into a cache
directory keyed by the lock file (`$TOLLGATE_TEST_CACHE`, else `~/.cache/tollgate-tests`), so
only the first run downloads it; without node/npm, or when npm cannot install it (no network),
the test is skipped with the reason.

What 2.1.332 sends for `claude -p hello` (seen at the simulator): one streaming
`POST /v1/messages?beta=true` for its default model `claude-opus-5-5`, with
`anthropic-version: 2023-06-01`, `anthropic-beta: claude-code-20250219,
interleaved-thinking-2025-05-14, context-management-2025-06-27, per-turn-control-2026-07-01,
mid-conversation-tool-changes-2026-07-01, thinking-token-count-2026-05-13,
advanced-tool-use-2025-11-20, effort-2025-11-24`, a `system` turn inside `messages`
(per-turn control), 12 tools (one with `defer_loading`), `thinking: {type: adaptive}`,
`context_management.edits`, `output_config.effort`, `max_tokens: 128000` and
`metadata.user_id` holding a JSON string of device and session ids. No count_tokens, no
/v1/models, nothing else. `--model 'claude-opus-4-8[1m]'` (the default of earlier 2.1.x, which
the issue measured) sends `model: claude-opus-4-8`, no 1M beta and no per-turn-control beta.
Claude Code's own price table knows both models (`costBasis: list`) and agrees with the book.

Three runs: the default settings; the default settings with the simulator answering cache
writes (5 min and 1 h), cache reads and web searches (knobs sent by Claude Code itself through
`ANTHROPIC_CUSTOM_HEADERS`), so every rate of both price tables is compared; and Opus 4.8 [1m].

Money: Claude Code computes `total_cost_usd` itself, from its own price table, in JavaScript
doubles, and prints the shortest decimal that round-trips. We read that number as the exact
decimal string it printed (`parse_float=Decimal`) and require it to equal the ledger's exact
NUMERIC sum once both are rounded to 1e-12 USD: a double's noise sits near 1e-18 at these
magnitudes, while any real pricing difference (one token at the cheapest rate is 1e-8 USD)
is far above that rounding, so the comparison can still fail on a wrong price.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.simulator import RunningSimulator, start_simulator_thread
from tests.support import Gateway, TenantKey, settled_rows

PACKAGE = Path(__file__).resolve().parent.parent / "claude_code"
FLOAT_NOISE = Decimal("1e-12")
# Simulator knobs for the second run, passed by Claude Code itself (ANTHROPIC_CUSTOM_HEADERS) and
# forwarded by Tollgate: cache writes of both durations, cache reads and web searches, so both
# price tables are compared on every rate, not only input and output.
CACHE_AND_SEARCH = (
    "x-sim-cache-write-5m-tokens: 1500\n"
    "x-sim-cache-write-1h-tokens: 700\n"
    "x-sim-cache-read-tokens: 9000\n"
    "x-sim-web-search-requests: 3"
)


def _cache_root() -> Path:
    configured = os.environ.get("TOLLGATE_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "tollgate-tests"


def _install(target: Path) -> str | None:
    """npm-install the pinned CLI into `target` (atomically); None, or why it failed."""
    staging = target.with_name(f"{target.name}.{uuid.uuid4().hex}")
    staging.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(PACKAGE / name, staging / name)
    try:
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        shutil.rmtree(staging, ignore_errors=True)
        return "npm ci took more than 600 s"
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        return result.stderr.strip()[:300]
    try:
        staging.rename(target)
    except OSError:  # another run installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return None


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed")
    digest = hashlib.sha256((PACKAGE / "package-lock.json").read_bytes()).hexdigest()[:16]
    target = _cache_root() / f"claude-code-{digest}"
    binary = target / "node_modules" / ".bin" / "claude"
    if not binary.exists():
        failure = _install(target)
        if failure is not None:
            pytest.skip(f"npm could not install Claude Code here: {failure}")
    return binary


async def _run_claude(
    binary: Path,
    gateway: Gateway,
    key: str,
    home: Path,
    args: tuple[str, ...],
    headers: str | None,
) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": key,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    if headers is not None:
        env["ANTHROPIC_CUSTOM_HEADERS"] = headers
    proc = await asyncio.create_subprocess_exec(
        str(binary),
        "-p",
        "hello",
        "--output-format",
        "json",
        *args,
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"claude exited {proc.returncode}: {err.decode()[:2000]}"
    result: dict[str, Any] = json.loads(out, parse_float=Decimal)
    return result


async def _tenant_rows(engine: AsyncEngine, tenant: TenantKey) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT * FROM usage_ledger WHERE tenant_id = :t ORDER BY started_at"),
            {"t": tenant.tenant_id},
        )
        return [dict(row) for row in result.mappings()]


@pytest.fixture
def own_simulator() -> Iterator[RunningSimulator]:
    """A simulator of this test's own, so its call log holds only Claude Code's requests."""
    sim = start_simulator_thread()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.mark.parametrize(
    ("args", "headers"),
    [((), None), ((), CACHE_AND_SEARCH), (("--model", "claude-opus-4-8[1m]"), CACHE_AND_SEARCH)],
    ids=["default", "default-cache-and-search", "opus-4-8-1m"],
)
async def test_claude_code_default_model_works_and_its_cost_equals_the_ledger(
    claude_bin: Path,
    own_simulator: RunningSimulator,
    gateway_factory: Callable[..., Gateway],
    tenant: TenantKey,
    engine: AsyncEngine,
    tmp_path: Path,
    args: tuple[str, ...],
    headers: str | None,
) -> None:
    gateway = gateway_factory(anthropic_base_url=own_simulator.url)
    home = tmp_path / "home"
    home.mkdir()
    result = await _run_claude(claude_bin, gateway, tenant.key, home, args, headers)
    assert result["is_error"] is False, result.get("result")
    assert result["subtype"] == "success"
    model_usage: dict[str, dict[str, Any]] = result["modelUsage"]
    assert model_usage, "Claude Code reported no model usage"

    calls = list(own_simulator.app.calls)
    message_calls = [c for c in calls if c.path == "/v1/messages"]
    assert message_calls, calls
    assert all("claude-code-20250219" in (c.beta or "") for c in message_calls), calls

    await settled_rows(engine, len(message_calls), timeout_s=30)
    rows = await _tenant_rows(engine, tenant)
    assert len(rows) == len(message_calls)
    assert all(row["status"] == "ok" for row in rows), [r["status"] for r in rows]
    assert {row["model"] for row in rows} == set(model_usage)

    reported_total: Decimal = result["total_cost_usd"]
    ledger_total = sum((row["cost_usd"] for row in rows), Decimal(0))
    assert ledger_total > 0
    assert reported_total.quantize(FLOAT_NOISE) == ledger_total.quantize(FLOAT_NOISE)

    for model, usage in model_usage.items():
        mine = [row for row in rows if row["model"] == model]
        for column, field in _USAGE_FIELDS:
            assert sum(r[column] for r in mine) == usage[field], field
        model_cost = sum((r["cost_usd"] for r in mine), Decimal(0))
        assert Decimal(usage["costUSD"]).quantize(FLOAT_NOISE) == model_cost.quantize(FLOAT_NOISE)
    if headers is not None:
        assert sum(r["web_search_requests"] for r in rows) == 3 * len(rows)
        assert sum(r["cache_write_1h_tokens"] for r in rows) == 700 * len(rows)


_USAGE_FIELDS = (
    ("input_tokens", "inputTokens"),
    ("output_tokens", "outputTokens"),
    ("cache_read_tokens", "cacheReadInputTokens"),
    ("web_search_requests", "webSearchRequests"),
    ("cache_write_5m_tokens", "cacheCreationEphemeral5mInputTokens"),
    ("cache_write_1h_tokens", "cacheCreationEphemeral1hInputTokens"),
)
