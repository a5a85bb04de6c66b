"""Usage seeded for the dashboard tests: requests on chosen past days, written by the ledger's own
`reserve` and `settle` (so every table the reports read, rollups included, is maintained), plus
real `/chat` requests today."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ledger.functions import OpenRequest, Settlement, reserve, settle
from api.pricing.book import PriceBook
from api.pricing.cost import Usage, compute_cost
from api.quotas.periods import calendar_month
from api.tenants.users import UserDirectory
from tests.support import Gateway, TenantKey, settled_rows


@dataclass
class Expected:
    """What the dashboard should show, summed exactly from what was seeded."""

    by_day: dict[date, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    by_user: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    by_model: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    requests: int = 0

    def add(self, day: date, user: str, model: str, cost: Decimal) -> None:
        self.by_day[day] += cost
        self.by_user[user] += cost
        self.by_model[model] += cost
        self.requests += 1

    @property
    def total(self) -> Decimal:
        return sum(self.by_day.values(), Decimal(0))


async def seed_past_request(
    engine: AsyncEngine,
    prices: PriceBook,
    tenant: TenantKey,
    *,
    day: date,
    user: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
) -> Decimal:
    """One settled request that started at 10:00 UTC on `day`; returns its cost."""
    price = prices.lookup(model)
    assert price is not None, model
    cost = compute_cost(price, Usage(input_tokens=input_tokens, output_tokens=output_tokens))
    started = datetime.combine(day, time(10), UTC)
    period_start, period_end = calendar_month(started)
    end_user_id = await UserDirectory(engine).resolve(tenant.tenant_id, user)
    request_id = uuid.uuid4()
    async with engine.connect() as conn:
        decision = await reserve(
            conn,
            OpenRequest(
                id=request_id,
                tenant_id=tenant.tenant_id,
                api_key_id=tenant.key_id,
                end_user_id=end_user_id,
                endpoint="messages",
                model=model,
                started_at=started,
                owner="dashboard-seed",
                period_start=period_start,
                period_end=period_end,
                hard_usd=cost,
                soft_usd=cost,
            ),
        )
        assert decision.outcome == "ok", decision
        settled = await settle(
            conn,
            Settlement(
                id=request_id,
                status="ok",
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_write_5m_tokens=0,
                cache_write_1h_tokens=0,
                cache_read_tokens=0,
                web_search_requests=0,
                cost_usd=cost,
                price_version=price.version,
                first_token_at=started + timedelta(seconds=1),
                ended_at=started + timedelta(seconds=3),
                upstream_request_id=None,
                http_status=200,
                error_type=None,
            ),
        )
        await conn.commit()
    assert settled
    return cost


async def chat_today(gateway: Gateway, tenant: TenantKey, user: str, output_tokens: int) -> None:
    """A real /chat request, read to its end."""
    async with (
        httpx.AsyncClient(base_url=gateway.url, timeout=15) as http,
        http.stream(
            "POST",
            "/chat",
            json={"message": "Hello", "user": user},
            headers={"x-api-key": tenant.key, "x-sim-output-tokens": str(output_tokens)},
        ) as response,
    ):
        assert response.status_code == 200
        await response.aread()


async def seed_usage(
    gateway: Gateway, engine: AsyncEngine, tenant: TenantKey, other: TenantKey
) -> tuple[Expected, Expected]:
    """Usage of `tenant` on four days (three past, and today through /chat) and of `other`
    (one user, `dave`). Returns what each tenant's dashboard, and all tenants', should show."""
    prices = gateway.state.prices.book
    today = datetime.now(UTC).date()
    mine, everyone = Expected(), Expected()
    past = [
        (6, "alice", "claude-sonnet-4-6", 40_000, 9_000),
        (3, "alice", "claude-haiku-4-5", 20_000, 4_000),
        (3, "bob", "claude-sonnet-4-6", 10_000, 2_000),
        (1, "carol", "claude-opus-4-5", 2_000, 500),
    ]
    for days_ago, user, model, tokens_in, tokens_out in past:
        day = today - timedelta(days=days_ago)
        cost = await seed_past_request(
            engine,
            prices,
            tenant,
            day=day,
            user=user,
            model=model,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
        )
        mine.add(day, user, model, cost)
        everyone.add(day, user, model, cost)
    cost = await seed_past_request(
        engine,
        prices,
        other,
        day=today - timedelta(days=2),
        user="dave",
        model="claude-sonnet-4-6",
        input_tokens=1_000,
        output_tokens=100,
    )
    everyone.add(today - timedelta(days=2), "dave", "claude-sonnet-4-6", cost)
    for user, tokens in (("bob", 30), ("carol", 12)):
        await chat_today(gateway, tenant, user, tokens)
    rows = await settled_rows(engine, len(past) + 3)
    for row in rows:
        if row["owner"] != "dashboard-seed":  # the /chat requests of today
            user = "bob" if row["output_tokens"] == 30 else "carol"
            mine.add(row["started_at"].date(), user, row["model"], row["cost_usd"])
            everyone.add(row["started_at"].date(), user, row["model"], row["cost_usd"])
    return mine, everyone
