"""`GET /v1/usage` with `group_by`, `from`, `to` (and the other report options): the same report
as the admin's, over the caller's tenant only; without them, the period summary as before."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.admin.helpers import assert_error
from tests.reports.conftest import Dataset
from tests.reports.helpers import expected_report, final_ledger, unordered
from tests.support import Gateway

GROUPS = ["tenant", "user", "model", "key", "day"]


async def _get(gateway: Gateway, key: str, params: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        return await http.get("/v1/usage", params=params, headers={"x-api-key": key})


async def test_a_tenant_sees_only_its_own_usage_in_every_grouping(
    admin_gateway: Gateway, engine: AsyncEngine, dataset: Dataset
) -> None:
    ledger = await final_ledger(engine)
    for me, other in ((dataset.a, dataset.b), (dataset.b, dataset.a)):
        mine = [row for row in ledger if row["tenant_id"] == me.tenant_id]
        for group_by in GROUPS:
            for window in ({}, {"from": "2026-10-05T12:00:00Z", "to": "2026-10-07"}):
                params = {"group_by": group_by, **window}
                response = await _get(admin_gateway, me.key, params)
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                assert unordered(body) == unordered(expected_report(mine, params))
                assert str(other.tenant_id) not in response.text
                assert str(other.key_id) not in response.text
        # The other tenant's key, or an end user only it has, finds nothing.
        for params in (
            {"group_by": "day", "key_id": str(other.key_id)},
            {"group_by": "day", "user": "carol" if me is dataset.a else "only-a"},
        ):
            body = (await _get(admin_gateway, me.key, params)).json()
            assert body["rows"] == [] and body["total"]["requests"] == 0


async def test_alice_of_one_tenant_is_not_alice_of_the_other(
    admin_gateway: Gateway, engine: AsyncEngine, dataset: Dataset
) -> None:
    ledger = await final_ledger(engine)
    for me in (dataset.a, dataset.b):
        body = (await _get(admin_gateway, me.key, {"group_by": "day", "user": "alice"})).json()
        mine = [r for r in ledger if r["tenant_id"] == me.tenant_id]
        expected = expected_report(mine, {"group_by": "day", "user": "alice"})
        assert body["total"] == expected["total"] and body["total"]["requests"] > 0


async def test_a_tenants_csv_is_scoped_too(admin_gateway: Gateway, dataset: Dataset) -> None:
    response = await _get(admin_gateway, dataset.b.key, {"format": "csv"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert rows and {r["tenant"] for r in rows} == {str(dataset.b.tenant_id)}


async def test_naming_a_tenant_or_a_bad_option_is_a_400(
    admin_gateway: Gateway, dataset: Dataset
) -> None:
    for params, name in (
        ({"group_by": "day", "tenant_id": str(dataset.b.tenant_id)}, "tenant_id"),
        ({"group_by": "hour"}, "group_by"),
        ({"from": "last week"}, "from"),
    ):
        response = await _get(admin_gateway, dataset.a.key, params)
        assert assert_error(response, 400, "invalid_request_error").startswith(f"{name}: ")


async def test_without_report_options_the_summary_is_unchanged(
    admin_gateway: Gateway, dataset: Dataset
) -> None:
    for params in ({}, {"_": "cache-buster"}):
        body = (await _get(admin_gateway, dataset.a.key, params)).json()
        assert set(body) == {
            "tenant_id", "plan", "period_start", "period_end", "limit_usd", "spent_usd",
            "reserved_usd", "remaining_usd", "users",
        }  # fmt: skip
        assert body["tenant_id"] == str(dataset.a.tenant_id)


async def test_the_report_needs_a_tenant_key(admin_gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=admin_gateway.url) as http:
        response = await http.get("/v1/usage", params={"group_by": "day"})
    assert_error(response, 401, "authentication_error")
