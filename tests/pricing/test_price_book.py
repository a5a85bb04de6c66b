"""The price book operators change without a release: two gateways on one database, a model
added with PUT /admin/prices, a price change that only reaches requests started after it, an
unknown model that costs nothing and reaches nothing, and /v1/models through the SDK."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from api.simulator import RunningSimulator, SimConfig, start_simulator_thread
from tests.admin.helpers import ADMIN_TOKEN
from tests.support import (
    Gateway,
    TenantKey,
    gateway_settings,
    ledger_rows,
    settled_rows,
    start_gateway,
    wait_until,
)

HEADERS = {"authorization": f"Bearer {ADMIN_TOKEN}"}
MESSAGES: list[Any] = [{"role": "user", "content": "Hello"}]
NEW_MODEL = "claude-opus-9-1"


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    running = start_simulator_thread(SimConfig(output_tokens=10))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def two_gateways(
    database_url: str, sim: RunningSimulator, tmp_path: Path
) -> Iterator[tuple[Gateway, Gateway]]:
    started = [
        start_gateway(
            gateway_settings(tmp_path / f"data{i}", sim.url, admin_token=ADMIN_TOKEN),
            database_url,
        )
        for i in (1, 2)
    ]
    try:
        yield started[0], started[1]
    finally:
        for gw in started:
            gw.stop()


def client(gw: Gateway, tenant: TenantKey) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=tenant.key, base_url=gw.url, max_retries=0)


async def put(gw: Gateway, model: str, body: dict[str, object]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gw.url, headers=HEADERS) as http:
        return await http.put(f"/admin/prices/{model}", json=body)


async def test_a_model_added_on_one_replica_is_priced_exactly_by_both(
    two_gateways: tuple[Gateway, Gateway], tenant: TenantKey, engine: AsyncEngine
) -> None:
    a, b = two_gateways
    with pytest.raises(anthropic.NotFoundError, match="PUT /admin/prices/claude-opus-9-1"):
        await client(b, tenant).messages.create(model=NEW_MODEL, max_tokens=50, messages=MESSAGES)
    response = await put(a, NEW_MODEL, {"input": "7", "output": "35", "fast_multiplier": 2})
    assert response.status_code == 201, response.text
    stored = response.json()
    # omitted cache rates default to 1.25x / 2x / 0.1x input
    assert (stored["cache_write_5m"], stored["cache_write_1h"], stored["cache_read"]) == (
        "8.75",
        "14",
        "0.7",
    )

    async def both_know_it() -> bool:
        return all(gw.state.prices.book.lookup(NEW_MODEL) is not None for gw in (a, b))

    await wait_until(both_know_it, timeout_s=60)
    for gw in (a, b):
        message = await client(gw, tenant).messages.create(
            model=NEW_MODEL, max_tokens=50, messages=MESSAGES
        )
        assert message.usage.output_tokens == 10
    rows = await settled_rows(engine, 2)
    for row in rows:
        # input_tokens * 7 + 10 * 35 micro-dollars
        expected = (Decimal(row["input_tokens"] * 7) + Decimal(10 * 35)) / 1_000_000
        assert row["cost_usd"] == expected
        assert row["price_version"] == stored["version"]
    # the same PUT again stores nothing new
    again = await put(a, NEW_MODEL, {**stored})
    assert again.status_code == 200 and again.json()["version"] == stored["version"]


async def test_a_price_change_reaches_only_requests_that_start_after_it(
    two_gateways: tuple[Gateway, Gateway], tenant: TenantKey, engine: AsyncEngine
) -> None:
    a, b = two_gateways
    model = "claude-haiku-4-5"
    await client(b, tenant).messages.create(model=model, max_tokens=50, messages=MESSAGES)
    [old] = await settled_rows(engine, 1)
    old_version = b.state.prices.book.lookup(model)
    assert old_version is not None and old["price_version"] == old_version.version
    # input * 1 + 10 * 5 micro-dollars at the shipped price
    assert old["cost_usd"] == (Decimal(old["input_tokens"]) + 50) / 1_000_000

    taken = await put(a, model, {"input": "2", "output": "9", "aliases": ["claude-opus-4-5"]})
    assert taken.status_code == 409, taken.text  # that alias names another model
    response = await put(a, model, {"input": "2", "output": "9"})
    assert response.status_code == 201, response.text
    new_version = response.json()["version"]
    # a PUT to an alias is a new version of its model, keeping what the body leaves out
    assert response.json()["model"] == "claude-haiku-4-5-20251001"
    assert response.json()["aliases"] == ["claude-haiku-4-5"]

    async def b_has_it() -> bool:
        found = b.state.prices.book.lookup(model)
        return found is not None and found.version == new_version

    await wait_until(b_has_it, timeout_s=60)
    await client(b, tenant).messages.create(model=model, max_tokens=50, messages=MESSAGES)
    rows = {r["id"]: r for r in await settled_rows(engine, 2)}
    assert rows[old["id"]]["cost_usd"] == old["cost_usd"]  # the row already written: unchanged
    [new] = [r for r in rows.values() if r["id"] != old["id"]]
    assert new["model"] == model  # the requested id
    assert new["price_version"] == new_version
    assert new["cost_usd"] == (Decimal(new["input_tokens"] * 2) + 90) / 1_000_000


async def test_an_unknown_model_leaves_no_row_and_makes_no_upstream_call(
    two_gateways: tuple[Gateway, Gateway],
    tenant: TenantKey,
    engine: AsyncEngine,
    sim: RunningSimulator,
) -> None:
    a, _ = two_gateways
    before = len(sim.app.calls)
    async with httpx.AsyncClient(base_url=a.url) as http:
        response = await http.post(
            "/v1/messages",
            headers={"x-api-key": tenant.key},
            json={"model": "claude-nope-1", "max_tokens": 10, "messages": MESSAGES},
        )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "not_found_error"
    assert "claude-nope-1" in error["message"]
    assert "PUT /admin/prices/claude-nope-1" in error["message"]
    assert "tollgate prices import" in error["message"]
    assert len(sim.app.calls) == before
    assert await ledger_rows(engine) == []


async def test_family_fallback_prices_an_unknown_id_as_the_newest_of_its_family(
    gateway_factory: Callable[..., Gateway], tenant: TenantKey, engine: AsyncEngine
) -> None:
    gw = gateway_factory(unknown_model="family")
    await client(gw, tenant).messages.create(
        model="claude-sonnet-7", max_tokens=50, messages=MESSAGES
    )
    [row] = await settled_rows(engine, 1)
    sonnet = gw.state.prices.book.lookup("claude-sonnet-5-5")
    assert sonnet is not None and row["price_version"] == sonnet.version
    # Sonnet 5.5: input * 2 + 50 * 10 micro-dollars (never $0)
    assert row["output_tokens"] == 50
    assert row["cost_usd"] == (Decimal(row["input_tokens"] * 2) + 500) / 1_000_000
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert 'tollgate_unknown_model_fallbacks_total{model="claude-sonnet-7"} 1.0' in metrics


async def test_admin_prices_lists_the_versions_in_force(
    two_gateways: tuple[Gateway, Gateway],
) -> None:
    a, _ = two_gateways
    async with httpx.AsyncClient(base_url=a.url, headers=HEADERS) as http:
        listed = (await http.get("/admin/prices")).json()["models"]
        refused = await http.put("/admin/prices/claude-x-1", json={"input": 1.5})
    by_model = {m["model"]: m for m in listed}
    assert by_model["claude-opus-4-8"]["input"] == "5"
    assert by_model["claude-opus-4-8"]["fast_multiplier"] == "2"
    assert by_model["claude-sonnet-5-5"]["cache_read"] == "0.1"  # the 2026-10-07 version
    assert by_model["claude-haiku-5-5"]["tiers"][0]["above_input_tokens"] == 100000
    assert by_model["claude-sonnet-4-5-20250929"]["aliases"] == ["claude-sonnet-4-5"]
    assert refused.status_code == 400 and "output" in refused.json()["error"]["message"]


async def test_sdk_models_list_shows_what_the_plan_allows_and_the_book_prices(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    sdk = client(gateway, tenant)
    listed = [m async for m in sdk.models.list(limit=5)]  # pages through has_more/last_id
    ids = [m.id for m in listed]
    assert "claude-opus-4-8" in ids and "claude-haiku-4-5-20251001" in ids
    assert len(ids) == len(set(ids)) == len(gateway.state.prices.book.current())
    assert set(ids[:2]) == {"claude-fable-5-2", "claude-mythos-5-2"}  # newest first
    one = await sdk.models.retrieve("claude-sonnet-4-5")  # an alias names its model
    assert (one.id, one.display_name, one.type) == (
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "model",
    )
    async with engine.begin() as conn:  # a plan restricted to a pattern
        await conn.exec_driver_sql(
            "UPDATE plans SET allowed_models = ARRAY['claude-haiku-*'] "
            "WHERE code = (SELECT plan_code FROM tenants WHERE id = $1)",
            (tenant.tenant_id,),
        )
    gateway.state.key_cache.clear()  # the plan is cached with the key
    haiku_only = [m.id async for m in sdk.models.list()]
    assert haiku_only == ["claude-haiku-5-5", "claude-haiku-4-5-20251001"]
    with pytest.raises(anthropic.NotFoundError):
        await sdk.models.retrieve("claude-opus-4-8")
    message = await sdk.messages.create(model="claude-haiku-5-5", max_tokens=5, messages=MESSAGES)
    assert message.model == "claude-haiku-5-5"
    with pytest.raises(anthropic.PermissionDeniedError):
        await sdk.messages.create(model="claude-opus-4-8", max_tokens=5, messages=MESSAGES)


async def test_fast_and_us_geo_reported_by_usage_are_priced_and_kept_on_the_row(
    two_gateways: tuple[Gateway, Gateway], tenant: TenantKey, engine: AsyncEngine
) -> None:
    a, _ = two_gateways
    message = await client(a, tenant).messages.create(
        model="claude-opus-5-5",
        max_tokens=50,
        messages=MESSAGES,
        extra_body={"speed": "fast", "inference_geo": "us"},
        extra_headers={"anthropic-beta": "fast-mode-2026-02-01"},
    )
    usage = message.usage.model_dump()
    assert (usage["speed"], usage["inference_geo"], usage["service_tier"]) == (
        "fast",
        "us",
        "standard",
    )
    [row] = await settled_rows(engine, 1)
    assert (row["speed"], row["inference_geo"]) == ("fast", "us")
    # (input * 4 + 10 * 20) * 2 (fast) * 1.1 (us) micro-dollars
    expected = (Decimal(row["input_tokens"] * 4) + 200) * 2 * Decimal("1.1") / 1_000_000
    assert row["cost_usd"] == expected
    # fast mode on a model without a fast price is refused before anything is spent
    with pytest.raises(anthropic.BadRequestError, match="fast mode has no price"):
        await client(a, tenant).messages.create(
            model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES, extra_body={"speed": "fast"}
        )
    assert len(await ledger_rows(engine)) == 1
