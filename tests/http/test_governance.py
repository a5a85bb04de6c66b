"""Bound keys see only their own user (defect 6); count_tokens counts against the key's rpm and
checks the plan's models (defect 8); `/v1/usage` refuses parameters it does not know."""

from __future__ import annotations

import anthropic
import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.keys.service import create_key
from tests.support import Gateway, TenantKey, ledger_rows, make_tenant_key, settled_rows

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "hi"}]


def _sdk(gateway: Gateway, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0)


async def test_a_bound_key_sees_only_its_own_user(
    gateway: Gateway, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    owner = await make_tenant_key(sessions)
    async with sessions() as session, session.begin():
        carol = await create_key(session, owner.tenant_id, user="carol")
    for user in ("alice", "bob"):
        await _sdk(gateway, owner.key).messages.create(
            model=MODEL, max_tokens=5, messages=MESSAGES, metadata={"user_id": user}
        )
    await _sdk(gateway, carol.key).messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
    await settled_rows(engine, 3)
    headers = {"x-api-key": carol.key}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers) as client:
        summary = (await client.get("/v1/usage")).json()
        csv = (await client.get("/v1/usage", params={"format": "csv"})).text
        by_user = (await client.get("/v1/usage", params={"group_by": "user"})).json()
        other = await client.get("/v1/usage", params={"user": "alice"})
    assert [u["user"] for u in summary["users"]] == ["carol"]
    assert "alice" not in csv and "bob" not in csv and "carol" in csv
    assert len(csv.strip().splitlines()) == 2  # the header and carol's one request
    assert [row["user"] for row in by_user["rows"]] == ["carol"]
    assert other.status_code == 403
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        whole = (await client.get("/v1/usage", headers={"x-api-key": owner.key})).json()
    assert sorted(u["user"] for u in whole["users"]) == ["alice", "bob", "carol"]


async def test_usage_refuses_a_tenant_id_or_an_unknown_parameter(
    gateway: Gateway, tenant: TenantKey
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url, headers={"x-api-key": tenant.key}) as c:
        other = await c.get("/v1/usage", params={"tenant_id": str(tenant.key_id)})
        typo = await c.get("/v1/usage", params={"grup_by": "day"})
    assert other.status_code == 400 and other.json()["error"]["message"].startswith("tenant_id")
    assert typo.status_code == 400


async def test_count_tokens_counts_against_the_keys_rpm(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET rpm_limit = 3 WHERE id = :id"), {"id": tenant.tenant_id}
        )
    client = _sdk(gateway, tenant.key)
    for _ in range(3):
        await client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    try:
        await client.messages.count_tokens(model=MODEL, messages=MESSAGES)
        raise AssertionError("the fourth call in a minute was not limited")
    except anthropic.RateLimitError as exc:
        assert int(exc.response.headers["retry-after"]) >= 1
    # ...and so does /v1/messages, which shares the window.
    try:
        await client.messages.create(model=MODEL, max_tokens=5, messages=MESSAGES)
        raise AssertionError("messages did not share the rpm window")
    except anthropic.RateLimitError:
        pass
    assert await ledger_rows(engine) == []  # count_tokens is not billed


async def test_count_tokens_checks_the_plans_models(
    gateway: Gateway, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    limited = await make_tenant_key(sessions, name="limited")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO plans (code, name, monthly_budget_usd, rpm_limit, max_concurrent,"
                " quota_mode, allowed_models) VALUES ('haiku-only', 'Haiku only', 10, 100, 5,"
                " 'hard', ARRAY['claude-haiku-4-5'])"
            )
        )
        await conn.execute(
            text("UPDATE tenants SET plan_code = 'haiku-only' WHERE id = :id"),
            {"id": limited.tenant_id},
        )
    client = _sdk(gateway, limited.key)
    await client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    try:
        await client.messages.count_tokens(model="claude-opus-4-6", messages=MESSAGES)
        raise AssertionError("a model off the plan was counted")
    except anthropic.PermissionDeniedError:
        pass
