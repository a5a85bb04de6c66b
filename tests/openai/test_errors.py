"""Refusals, quota rejections and upstream failures on /v1/chat/completions, in OpenAI's error
shape, through the `openai` SDK; and GET /v1/models in both shapes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support import Gateway, TenantKey, ledger_rows, settled_rows

MODEL = "claude-sonnet-4-6"
HELLO: list[Any] = [{"role": "user", "content": "Hello, Claude"}]


def client(gateway: Gateway, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True, "top_logprobs": 3}, "logprobs"),
        (
            {"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}},
            "modalities",
        ),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
        ({"temperature": 1.7}, "temperature"),
        ({"extra_body": {"top_k": 5}}, "top_k"),
        ({"reasoning_effort": "high", "model": "claude-3-5-haiku-20241022"}, "reasoning_effort"),
    ],
)
async def test_what_cannot_be_honoured_is_a_400_naming_the_parameter(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine, params: dict[str, Any], param: str
) -> None:
    kwargs: dict[str, Any] = {"model": MODEL, "messages": HELLO, **params}
    with pytest.raises(openai.BadRequestError) as caught:
        await client(gateway, tenant.key).chat.completions.create(**kwargs)
    error = caught.value
    assert error.status_code == 400
    assert isinstance(error.body, dict)
    assert error.body["type"] == "invalid_request_error"
    assert error.body["param"] == param
    assert param in error.body["message"]
    assert await ledger_rows(engine) == []


async def test_duplicate_keys_and_bad_json_are_refused(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    bodies = [
        b'{"model": "claude-sonnet-4-6", "model": "claude-haiku-4-5", "messages": []}',
        b'{"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "a", '
        b'"content": "b"}]}',
        b"{not json",
    ]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for body in bodies:
            response = await http.post(
                "/v1/chat/completions",
                content=body,
                headers={"authorization": f"Bearer {tenant.key}"},
            )
            assert response.status_code == 400
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert await ledger_rows(engine) == []


async def test_auth_and_unknown_model_errors_are_openai_shaped(
    gateway: Gateway, tenant: TenantKey
) -> None:
    with pytest.raises(openai.AuthenticationError) as auth:
        await client(gateway, "tg_live_wrong").chat.completions.create(model=MODEL, messages=HELLO)
    assert isinstance(auth.value.body, dict) and auth.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.NotFoundError) as missing:
        await client(gateway, tenant.key).chat.completions.create(
            model="claude-nope-1", messages=HELLO
        )
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["code"] == "model_not_found"


async def set_limits(engine: AsyncEngine, tenant: TenantKey, budget: str | None, rpm: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET monthly_budget_usd = :b, rpm_limit = :r WHERE id = :id"),
            {
                "b": Decimal(budget) if budget is not None else None,
                "r": rpm,
                "id": tenant.tenant_id,
            },
        )


async def test_budget_402_and_rate_limit_429_keep_retry_after(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    c = client(gateway, tenant.key)
    await set_limits(engine, tenant, "0", 100_000)
    with pytest.raises(openai.APIStatusError) as broke:
        await c.chat.completions.create(model=MODEL, messages=HELLO)
    assert broke.value.status_code == 402
    assert isinstance(broke.value.body, dict) and broke.value.body["type"] == "insufficient_quota"
    await set_limits(engine, tenant, None, 1)
    await c.chat.completions.create(model=MODEL, messages=HELLO)
    with pytest.raises(openai.RateLimitError) as limited:
        await c.chat.completions.create(model=MODEL, messages=HELLO)
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert isinstance(limited.value.body, dict)
    assert limited.value.body["code"] == "rate_limit_exceeded"
    rows = await settled_rows(engine, 1)
    assert [r["status"] for r in rows] == ["ok"]  # refusals are not billed


async def test_upstream_errors_before_and_during_the_stream(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    c = client(gateway, tenant.key)
    with pytest.raises(openai.RateLimitError) as limited:
        await c.chat.completions.create(
            model=MODEL, messages=HELLO, extra_headers={"x-sim-status": "429"}
        )
    assert limited.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.InternalServerError) as overloaded:
        await c.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, extra_headers={"x-sim-status": "529"}
        )
    assert overloaded.value.status_code == 503
    stream = await c.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        stream=True,
        extra_headers={"x-sim-fail": "overloaded", "x-sim-fail-after": "5"},
    )
    seen = 0
    with pytest.raises(openai.APIError, match="Overloaded"):
        async for chunk in stream:
            seen += bool(chunk.choices and chunk.choices[0].delta.content)
    assert seen == 5
    rows = await settled_rows(engine, 3)
    assert [r["status"] for r in rows] == ["upstream_error"] * 3
    assert rows[2]["output_tokens"] == 5 and rows[2]["endpoint"] == "chat_completions"


async def test_models_list_in_the_shape_each_sdk_expects(
    gateway: Gateway, tenant: TenantKey
) -> None:
    page = await client(gateway, tenant.key).models.list()
    ids = [m.id for m in page.data]
    assert "claude-sonnet-4-6" in ids and all(m.object == "model" for m in page.data)
    one = await client(gateway, tenant.key).models.retrieve("claude-sonnet-4-5")
    assert one.id == "claude-sonnet-4-5-20250929" and one.owned_by == "anthropic"
    async with anthropic.AsyncAnthropic(
        base_url=gateway.url, api_key=tenant.key, max_retries=0
    ) as ac:
        models = [m async for m in ac.models.list()]
        assert [m.id for m in models] == ids
        assert all(m.type == "model" and m.display_name.startswith("Claude") for m in models)
        model = await ac.models.retrieve("claude-sonnet-4-6")
        assert model.display_name == "Claude Sonnet 4.6"


async def test_models_errors_follow_the_header_rule(gateway: Gateway, tenant: TenantKey) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        auth = {"authorization": f"Bearer {tenant.key}"}
        openai_style = await http.get("/v1/models/claude-nope-1", headers=auth)
        anthropic_style = await http.get(
            "/v1/models/claude-nope-1", headers={**auth, "anthropic-version": "2023-06-01"}
        )
    assert openai_style.status_code == anthropic_style.status_code == 404
    assert openai_style.json()["error"]["code"] == "model_not_found"
    assert anthropic_style.json()["type"] == "error"
    assert anthropic_style.json()["error"]["type"] == "not_found_error"
