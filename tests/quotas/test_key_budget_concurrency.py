"""A key's own monthly budget holds exactly like the tenant's: 200 concurrent streams over two
server processes, a key budget with room for exactly 37 reservations, 0 overshoot, and the key's
counter back to zero reserved once every stream has settled."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.gate import UpstreamGate
from tests.quotas.conftest import set_limits
from tests.quotas.test_concurrency import ADMITTED, REQUESTS, RESERVATION, burst, ledger_total
from tests.support import ServeProcess, make_tenant_key, settled_rows


async def test_key_budget_admits_exactly_n_across_two_servers(
    two_servers: list[ServeProcess],
    gate: UpstreamGate,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    tenant = await make_tenant_key(sessions)
    await set_limits(engine, tenant.tenant_id, budget=Decimal(1000))  # the tenant has room
    key_budget = RESERVATION * ADMITTED + RESERVATION / 2
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE api_keys SET monthly_budget_usd = :b WHERE id = :k"),
            {"b": key_budget, "k": tenant.key_id},
        )
    responses = await burst(two_servers, tenant.key, gate)
    assert Counter(r.status_code for r in responses) == {200: ADMITTED, 402: REQUESTS - ADMITTED}
    refused = next(r for r in responses if r.status_code == 402)
    assert refused.json()["error"]["type"] == "billing_error"
    assert "API key's monthly budget" in refused.json()["error"]["message"]
    await settled_rows(engine, ADMITTED, timeout_s=120)
    count, total = await ledger_total(engine, tenant.tenant_id)
    assert count == ADMITTED and total <= key_budget  # 0 overshoot
    async with engine.connect() as conn:
        spent, reserved = (
            await conn.execute(
                text("SELECT spent_usd, reserved_usd FROM key_spend WHERE api_key_id = :k"),
                {"k": tenant.key_id},
            )
        ).one()
    assert (Decimal(spent), Decimal(reserved)) == (total, Decimal(0))  # equal to the ledger
