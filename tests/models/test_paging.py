"""`GET /v1/models` pages like Anthropic's list (`limit`, `after_id`, `before_id`, `has_more`,
`first_id`, `last_id`), so the official SDK's auto-pagination walks the whole list once."""

from __future__ import annotations

import anthropic
import httpx

from tests.support import Gateway, TenantKey


def _sdk(gateway: Gateway, tenant: TenantKey) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=tenant.key, base_url=gateway.url, max_retries=0)


async def _get(gateway: Gateway, tenant: TenantKey, **params: object) -> httpx.Response:
    headers = {"x-api-key": tenant.key, "anthropic-version": "2023-06-01"}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as http:
        return await http.get("/v1/models", params=params)


async def test_sdk_auto_pagination_walks_every_model_once_in_order(
    gateway: Gateway, tenant: TenantKey
) -> None:
    everything = (await _get(gateway, tenant, limit=1000)).json()
    assert everything["has_more"] is False
    ids = [m["id"] for m in everything["data"]]
    assert len(ids) > 7 and (everything["first_id"], everything["last_id"]) == (ids[0], ids[-1])

    sdk = _sdk(gateway, tenant)
    first = await sdk.models.list(limit=3)
    assert [m.id for m in first.data] == ids[:3]
    assert (first.has_more, first.first_id, first.last_id) == (True, ids[0], ids[2])
    walked = [m.id async for m in await sdk.models.list(limit=3)]  # follows has_more/last_id
    assert walked == ids
    assert len(ids) == len(gateway.state.prices.book.current())

    default = (await _get(gateway, tenant)).json()
    assert [m["id"] for m in default["data"]] == ids[:20]  # Anthropic's default page size
    assert default["has_more"] is (len(ids) > 20)


async def test_after_id_and_before_id_page_both_ways(gateway: Gateway, tenant: TenantKey) -> None:
    ids = [m["id"] for m in (await _get(gateway, tenant, limit=1000)).json()["data"]]
    after = (await _get(gateway, tenant, limit=2, after_id=ids[1])).json()
    assert [m["id"] for m in after["data"]] == ids[2:4]
    assert (after["first_id"], after["last_id"], after["has_more"]) == (ids[2], ids[3], True)
    back = (await _get(gateway, tenant, limit=2, before_id=ids[4])).json()
    assert [m["id"] for m in back["data"]] == ids[2:4] and back["has_more"] is True
    start = (await _get(gateway, tenant, limit=5, before_id=ids[2])).json()
    assert [m["id"] for m in start["data"]] == ids[:2] and start["has_more"] is False
    end = (await _get(gateway, tenant, limit=5, after_id=ids[-1])).json()
    assert (end["data"], end["has_more"], end["first_id"], end["last_id"]) == (
        [],
        False,
        None,
        None,
    )
    sdk = _sdk(gateway, tenant)
    previous = await sdk.models.list(limit=2, before_id=ids[4])
    assert [m.id for m in previous.data] == ids[2:4]


async def test_bad_paging_parameters_are_400_invalid_request(
    gateway: Gateway, tenant: TenantKey
) -> None:
    for params in (
        {"limit": 0},
        {"limit": 1001},
        {"limit": "many"},
        {"after_id": "claude-nope-1"},
        {"after_id": "claude-opus-4-8", "before_id": "claude-opus-4-7"},
    ):
        response = await _get(gateway, tenant, **params)
        assert response.status_code == 400, params
        assert response.json()["error"]["type"] == "invalid_request_error"
