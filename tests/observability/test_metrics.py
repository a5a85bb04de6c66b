"""`GET /metrics`: what a scrape shows after real requests through a real Tollgate."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ledger.functions import Settlement
from api.observability.metrics import Metrics
from tests.support import Gateway, TenantKey, settled_rows, wait_until

MODEL = "claude-haiku-4-5"


async def scrape(gateway: Gateway) -> str:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


def value(exposition: str, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def post(gateway: Gateway, key: str, path: str, body: object, **headers: str) -> int:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=15) as http:
        response = await http.post(path, json=body, headers={"x-api-key": key, **headers})
        return response.status_code


async def test_a_streamed_request_is_counted_with_its_tokens_cost_and_timings(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    body = {"message": "Hello", "model": MODEL}
    assert await post(gateway, tenant.key, "/chat", body, **{"x-sim-output-tokens": "25"}) == 200
    [row] = await settled_rows(engine, 1)
    metrics = await scrape(gateway)

    assert value(metrics, "tollgate_requests_total", endpoint="chat", status="ok") == 1
    model = {"model": MODEL}
    assert value(metrics, "tollgate_tokens_total", kind="output", **model) == 25
    assert value(metrics, "tollgate_tokens_total", kind="input", **model) == row["input_tokens"]
    assert value(metrics, "tollgate_tokens_total", kind="cache_read", **model) == 0
    assert value(metrics, "tollgate_cost_usd_total", **model) == float(row["cost_usd"])
    assert value(metrics, "tollgate_time_to_first_token_seconds_count", **model) == 1
    assert value(metrics, "tollgate_request_duration_seconds_count", **model) == 1
    assert value(metrics, "tollgate_reservations_in_flight") == 0
    assert value(metrics, "tollgate_quota_rejections_total", kind="budget") == 0


async def test_a_budget_refusal_counts_as_a_quota_rejection_and_is_not_billed(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET monthly_budget_usd = 0.000001 WHERE id = :id"),
            {"id": tenant.tenant_id},
        )
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
    assert await post(gateway, tenant.key, "/v1/messages", body) == 402
    metrics = await scrape(gateway)
    assert value(metrics, "tollgate_quota_rejections_total", kind="budget") == 1
    assert value(metrics, "tollgate_requests_total", endpoint="messages", status="rejected") == 1
    assert value(metrics, "tollgate_reservations_in_flight") == 0
    assert value(metrics, "tollgate_tokens_total", model=MODEL, kind="input") == 0


async def test_a_rate_limit_refusal_counts_by_its_kind(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET rpm_limit = 1 WHERE id = :id"), {"id": tenant.tenant_id}
        )
    body = {"message": "Hello", "model": MODEL}
    assert await post(gateway, tenant.key, "/chat", body) == 200
    assert await post(gateway, tenant.key, "/chat", body) == 429
    metrics = await scrape(gateway)
    assert value(metrics, "tollgate_quota_rejections_total", kind="rate") == 1
    assert value(metrics, "tollgate_quota_rejections_total", kind="budget") == 0
    assert value(metrics, "tollgate_requests_total", endpoint="chat", status="ok") == 1
    assert value(metrics, "tollgate_requests_total", endpoint="chat", status="rejected") == 1


async def test_upstream_errors_are_counted_by_type(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
    refused = await post(gateway, tenant.key, "/v1/messages", body, **{"x-sim-status": "529"})
    assert refused == 529
    mid_stream = {**body, "stream": True}
    failing = {"x-sim-fail": "overloaded", "x-sim-fail-after": "3"}
    assert await post(gateway, tenant.key, "/v1/messages", mid_stream, **failing) == 200
    await settled_rows(engine, 2)

    async def both_counted() -> bool:
        metrics = await scrape(gateway)
        return value(metrics, "tollgate_upstream_errors_total", type="overloaded_error") == 2

    await wait_until(both_counted)
    metrics = await scrape(gateway)
    assert value(metrics, "tollgate_requests_total", endpoint="messages", status="upstream_error")
    assert value(metrics, "tollgate_reservations_in_flight") == 0


async def test_each_app_has_its_own_registry(
    gateway_factory: Callable[..., Gateway], tenant: TenantKey, engine: AsyncEngine
) -> None:
    first, second = gateway_factory(), gateway_factory()
    assert await post(first, tenant.key, "/chat", {"message": "Hello", "model": MODEL}) == 200
    await settled_rows(engine, 1)
    ok = {"endpoint": "chat", "status": "ok"}
    assert value(await scrape(first), "tollgate_requests_total", **ok) == 1
    assert value(await scrape(second), "tollgate_requests_total", **ok) == 0


def _settlement(status: str, error_type: str | None, cost: str = "0.25") -> Settlement:
    return Settlement(
        id=uuid.uuid4(),
        status=status,
        model=MODEL,
        input_tokens=10,
        output_tokens=5,
        cache_write_5m_tokens=3,
        cache_write_1h_tokens=2,
        cache_read_tokens=7,
        web_search_requests=0,
        cost_usd=Decimal(cost),
        price_version="test",
        first_token_at=None,
        ended_at=datetime.now(UTC),
        upstream_request_id=None,
        http_status=200,
        error_type=error_type,
    )


@pytest.mark.parametrize(
    ("status", "error_type", "label"),
    [
        ("timeout", None, "timeout_error"),
        ("upstream_error", "overloaded_error", "overloaded_error"),
        ("upstream_error", "a-type-nobody-knows", "other"),
    ],
)
def test_error_types_stay_a_small_label_set(
    status: str, error_type: str | None, label: str
) -> None:
    metrics = Metrics()
    metrics.reservation("messages", "ok")
    metrics.settled("messages", _settlement(status, error_type), duration_s=1.5, ttft_s=None)
    registry = metrics.registry
    assert registry.get_sample_value("tollgate_upstream_errors_total", {"type": label}) == 1
    kinds = {"cache_write_5m": 3, "cache_write_1h": 2, "cache_read": 7}
    for kind, count in kinds.items():
        labels = {"model": MODEL, "kind": kind}
        assert registry.get_sample_value("tollgate_tokens_total", labels) == count
    assert registry.get_sample_value("tollgate_reservations_in_flight") == 0
    assert registry.get_sample_value("tollgate_time_to_first_token_seconds_count") is None
