"""The ledger row's tokens and cost equal hand-computed values for every price case.

Costs below are written out by hand from the price table in DESIGN.md (USD per million tokens:
input / output / cache write 5 min / cache write 1 h / cache read)."""

from __future__ import annotations

from decimal import Decimal

import anthropic
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Gateway, TenantKey, ledger_rows, settled_rows

MESSAGES = [{"role": "user", "content": "Hello, Claude"}]


@pytest.mark.parametrize(
    ("model", "knobs", "tokens", "expected_cost"),
    [
        # Sonnet 4.6: 1000 in x $3 + 200 out x $15 = 0.003 + 0.003
        (
            "claude-sonnet-4-6",
            {"input-tokens": 1000, "output-tokens": 200},
            (1000, 200, 0, 0, 0),
            "0.006",
        ),
        # Sonnet 4.6 with caches: 1000 in x 3 + 100 out x 15 + 2000 read x 0.30
        #   + 4000 5m-write x 3.75 + 1000 1h-write x 6
        #   = 0.003 + 0.0015 + 0.0006 + 0.015 + 0.006
        (
            "claude-sonnet-4-6",
            {
                "input-tokens": 1000,
                "output-tokens": 100,
                "cache-read-tokens": 2000,
                "cache-write-5m-tokens": 4000,
                "cache-write-1h-tokens": 1000,
            },
            (1000, 100, 4000, 1000, 2000),
            "0.0261",
        ),
        # Haiku 4.5: 1234 in x $1 + 321 out x $5 = 0.001234 + 0.001605
        (
            "claude-haiku-4-5",
            {"input-tokens": 1234, "output-tokens": 321},
            (1234, 321, 0, 0, 0),
            "0.002839",
        ),
        # Opus 4.6: 777 in x $5 + 99 out x $25 + 500 read x 0.50 = 0.003885 + 0.002475 + 0.00025
        (
            "claude-opus-4-6",
            {"input-tokens": 777, "output-tokens": 99, "cache-read-tokens": 500},
            (777, 99, 0, 0, 500),
            "0.00661",
        ),
        # Sonnet 4.5 above 200K input: the whole request at $6 / $22.50:
        #   250000 x 6 + 1000 x 22.5 = 1.5 + 0.0225
        (
            "claude-sonnet-4-5-20250929",
            {"input-tokens": 250000, "output-tokens": 1000},
            (250000, 1000, 0, 0, 0),
            "1.5225",
        ),
        # ... and exactly at 200K no premium: 200000 x 3 + 1000 x 15 = 0.6 + 0.015
        (
            "claude-sonnet-4-5",
            {"input-tokens": 200000, "output-tokens": 1000},
            (200000, 1000, 0, 0, 0),
            "0.615",
        ),
        # Web search: 3 requests x $10/1000 on top of 100 in x 3 + 10 out x 15 = 0.03 + 0.00045
        (
            "claude-sonnet-4-6",
            {"input-tokens": 100, "output-tokens": 10, "web-search-requests": 3},
            (100, 10, 0, 0, 0),
            "0.03045",
        ),
    ],
)
async def test_ledger_cost_equals_hand_computed(
    gateway: Gateway,
    tenant: TenantKey,
    engine: AsyncEngine,
    model: str,
    knobs: dict[str, int],
    tokens: tuple[int, int, int, int, int],
    expected_cost: str,
) -> None:
    headers = {f"x-sim-{k}": str(v) for k, v in knobs.items()}
    client = anthropic.AsyncAnthropic(
        base_url=gateway.url, api_key=tenant.key, max_retries=0, default_headers=headers
    )
    async with client.messages.stream(model=model, max_tokens=4096, messages=MESSAGES) as stream:
        final = await stream.get_final_message()
    [row] = await settled_rows(engine, 1)
    got = (
        row["input_tokens"],
        row["output_tokens"],
        row["cache_write_5m_tokens"],
        row["cache_write_1h_tokens"],
        row["cache_read_tokens"],
    )
    assert got == tokens
    assert row["cost_usd"] == Decimal(expected_cost)
    assert final.usage.input_tokens == row["input_tokens"]
    assert final.usage.output_tokens == row["output_tokens"]


async def test_unknown_model_is_refused_and_not_billed(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=tenant.key, max_retries=0)
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.create(model="claude-mystery-9", max_tokens=5, messages=MESSAGES)
    assert await ledger_rows(engine) == []
