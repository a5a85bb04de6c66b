"""`GET /admin/usage` as JSON: every grouping and filter agrees with the ledger summed in Python,
`from` is inclusive and `to` exclusive at any instant (midnight or not), in-flight requests are
never counted, and only the admin token opens it."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.admin.helpers import ADMIN_TOKEN, MESSAGES, MODEL, assert_error, sdk
from tests.reports.conftest import HAIKU, Dataset, iso
from tests.reports.helpers import expected_report, final_ledger, unordered, utc
from tests.support import Gateway, TenantKey, settled_rows

GROUPS = ["tenant", "user", "model", "key", "day"]


async def _report(admin: httpx.AsyncClient, params: dict[str, str]) -> dict[str, Any]:
    response = await admin.get("/admin/usage", params=params)
    assert response.status_code == 200, (params, response.text)
    body: dict[str, Any] = response.json()
    return body


async def _check(
    admin: httpx.AsyncClient, ledger: list[dict[str, Any]], params: dict[str, str]
) -> dict[str, Any]:
    got = await _report(admin, params)
    assert unordered(got) == unordered(expected_report(ledger, params)), params
    return got


async def test_every_grouping_and_filter_matches_the_ledger(
    admin: httpx.AsyncClient, engine: AsyncEngine, dataset: Dataset
) -> None:
    ledger = await final_ledger(engine)
    filters: list[dict[str, str]] = [
        {},
        {"tenant_id": str(dataset.a.tenant_id)},
        {"user": "alice"},  # the alice of both tenants
        {"user": "alice", "tenant_id": str(dataset.b.tenant_id)},
        {"model": HAIKU},
        {"key_id": str(dataset.a2_key)},
        {"model": HAIKU, "user": "bob", "tenant_id": str(dataset.a.tenant_id)},
        {"user": "nobody"},
    ]
    for extra in filters:
        for group_by in [*GROUPS, None]:
            params = {**extra, **({"group_by": group_by} if group_by else {})}
            got = await _check(admin, ledger, params)
            if group_by is None:
                assert got["rows"] == []


async def test_rows_are_typed_and_ordered(
    admin: httpx.AsyncClient, engine: AsyncEngine, dataset: Dataset
) -> None:
    by_day = await _report(admin, {"group_by": "day"})
    days = [row["day"] for row in by_day["rows"]]
    assert days == sorted(days) and days[0] == "2026-10-01"
    by_user = await _report(admin, {"group_by": "user"})
    costs = [Decimal(row["cost_usd"]) for row in by_user["rows"]]
    assert costs == sorted(costs, reverse=True)
    alices = {row["tenant"] for row in by_user["rows"] if row["user"] == "alice"}
    assert alices == {str(dataset.a.tenant_id), str(dataset.b.tenant_id)}
    assert any(row["user"] is None for row in by_user["rows"])  # requests without an end user
    for row in [*by_user["rows"], by_user["total"]]:
        assert all(type(row[name]) is int for name in ("requests", "input_tokens"))
        assert isinstance(row["cost_usd"], str) and "e" not in row["cost_usd"].lower()


async def test_from_is_inclusive_and_to_exclusive_at_midnight_and_between(
    admin: httpx.AsyncClient, engine: AsyncEngine, dataset: Dataset
) -> None:
    ledger = await final_ledger(engine)
    tenant = str(dataset.a.tenant_id)
    # Rows of tenant A at 2026-10-05 00:00:00, 11:59:59.999999, 12:00:00, 23:59:59.999999 and
    # 2026-10-06 00:00:00 (plus random ones).
    cases = [
        ("2026-10-05", "2026-10-06"),
        ("2026-10-05T12:00:00Z", "2026-10-06T00:00:00Z"),
        ("2026-10-05T11:59:59.999999Z", "2026-10-05T12:00:00Z"),
        ("2026-10-05T00:00:00.000001Z", "2026-10-06T00:00:00.000001Z"),
        ("2026-10-04T22:00:00+02:00", "2026-10-05T12:00:00Z"),  # an offset is converted
        ("2026-10-05T12:00:00Z", None),
        (None, "2026-10-05T12:00:00Z"),
    ]
    for start, end in cases:
        for group_by in ("day", "user"):
            params = {"tenant_id": tenant, "group_by": group_by}
            params |= {"from": start} if start else {}
            params |= {"to": end} if end else {}
            await _check(admin, ledger, params)
    exact = await _report(
        admin, {"tenant_id": tenant, "from": "2026-10-05T12:00:00Z", "to": "2026-10-05T12:00:01Z"}
    )
    assert exact["total"]["requests"] == 1 and exact["total"]["input_tokens"] == 300


async def test_random_windows_mixing_rollup_days_and_ledger_edges_match_the_ledger(
    admin: httpx.AsyncClient, engine: AsyncEngine, dataset: Dataset
) -> None:
    ledger = await final_ledger(engine)
    rng = random.Random(7)
    instants = [row["started_at"] for row in ledger]
    instants += [utc(f"2026-10-{d:02d}T00:00:00") for d in range(1, 12)]
    for _ in range(40):
        a, b = sorted(rng.sample(instants, 2))
        a += timedelta(microseconds=rng.choice([-1, 0, 0, 1]))
        if a >= b:
            continue
        params = {"from": iso(a), "to": iso(b), "group_by": rng.choice(GROUPS)}
        if rng.random() < 0.3:
            params["tenant_id"] = str(dataset.a.tenant_id)
        await _check(admin, ledger, params)


async def test_in_flight_requests_are_not_counted(
    admin: httpx.AsyncClient, engine: AsyncEngine, dataset: Dataset
) -> None:
    ledger = await final_ledger(engine)
    params = {"from": "2026-10-06", "to": "2026-10-07", "tenant_id": str(dataset.a.tenant_id)}
    got = await _report(admin, params)
    assert got["total"]["requests"] == expected_report(ledger, params)["total"]["requests"]
    abandoned = await _report(admin, {"from": "2026-10-07T01:00:00Z", "to": "2026-10-07T01:00:01Z"})
    assert abandoned["total"] == {  # final, with nothing used: counted as a request, for $0
        "requests": 1,
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cost_usd": "0",
    }


async def test_requests_through_the_gateway_show_up(
    admin: httpx.AsyncClient, admin_gateway: Gateway, engine: AsyncEngine, tenant: TenantKey
) -> None:
    client = sdk(admin_gateway, tenant.key)
    for user in ("alice", "alice", "bob"):
        await client.messages.create(
            model=MODEL, max_tokens=20, messages=MESSAGES, metadata={"user_id": user}
        )
    async with client.messages.stream(
        model=MODEL, max_tokens=30, messages=MESSAGES, metadata={"user_id": "bob"}
    ) as stream:
        await stream.get_final_message()
    await settled_rows(engine, 4)
    ledger = await final_ledger(engine)
    for group_by in GROUPS:
        got = await _check(admin, ledger, {"group_by": group_by})
        assert got["total"]["requests"] == 4 and Decimal(got["total"]["cost_usd"]) > 0
    by_user = await _report(admin, {"group_by": "user", "tenant_id": str(tenant.tenant_id)})
    assert sorted((r["user"], r["requests"]) for r in by_user["rows"]) == [
        ("alice", 2),
        ("bob", 2),
    ]


@pytest.mark.parametrize(
    ("headers", "status", "error_type"),
    [
        ({}, 401, "authentication_error"),
        ({"authorization": "Bearer wrong"}, 401, "authentication_error"),
        ({"x-api-key": ADMIN_TOKEN}, 401, "authentication_error"),
    ],
)
async def test_the_admin_token_is_required(
    admin_gateway: Gateway, headers: dict[str, str], status: int, error_type: str
) -> None:
    async with httpx.AsyncClient(base_url=admin_gateway.url) as http:
        for params in ({"group_by": "day"}, {"format": "csv"}, {"group_by": "bogus"}):
            response = await http.get("/admin/usage", params=params, headers=headers)
            assert_error(response, status, error_type)


async def test_a_tenant_key_is_not_the_admin_token(
    admin_gateway: Gateway, tenant: TenantKey
) -> None:
    async with httpx.AsyncClient(base_url=admin_gateway.url) as http:
        for auth in ({"x-api-key": tenant.key}, {"authorization": f"Bearer {tenant.key}"}):
            assert_error(await http.get("/admin/usage", headers=auth), 401, "authentication_error")


async def test_without_an_admin_token_configured_the_report_is_off(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get(
            "/admin/usage", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}
        )
    assert_error(response, 403, "permission_error")
