"""A gateway with the admin API on, and a small ledger with known rows: two tenants (both with an
end user called `alice`; `carol` only in B, `only-a` only in A), three keys, three models, rows
on and around midnight boundaries, statuses that are final and one that is not, and some random
volume."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.keys.service import create_key
from tests.admin.helpers import ADMIN_TOKEN
from tests.reports.helpers import Usage, add_request, open_request, utc
from tests.support import Gateway, TenantKey, make_tenant_key

HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"


@dataclass(frozen=True)
class Dataset:
    a: TenantKey
    a2_key: uuid.UUID  # tenant A's second key
    b: TenantKey


@pytest.fixture
def admin_gateway(gateway_factory: Callable[..., Gateway]) -> Gateway:
    return gateway_factory(admin_token=ADMIN_TOKEN)


@pytest.fixture
async def admin(admin_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=admin_gateway.url, headers=headers) as client:
        yield client


def _usage(model: str, n: int, status: str = "ok") -> Usage:
    """Distinct, easily told apart numbers per request."""
    return Usage(
        model=model,
        input=100 * n,
        output=10 * n,
        cw5m=n,
        cw1h=2 * n,
        cread=3 * n,
        cost=Decimal(n) / 1000 + Decimal("0.0000000001"),
        status=status,
    )


async def _random_volume(engine: AsyncEngine, data: Dataset, count: int) -> None:
    rng = random.Random(20261120)
    keys = [(data.a.tenant_id, data.a.key_id), (data.a.tenant_id, data.a2_key)]
    keys.append((data.b.tenant_id, data.b.key_id))
    statuses = ["ok"] * 8 + ["incomplete", "client_disconnected", "upstream_error", "timeout"]
    for i in range(count):
        tenant_id, key_id = rng.choice(keys)
        user = rng.choice(["alice", "bob", "dave", "=HYPERLINK(1)", None])
        started = utc("2026-10-01T00:00:00") + timedelta(seconds=rng.randrange(0, 10 * 86400))
        model = rng.choice([HAIKU, HAIKU, SONNET, OPUS])
        usage = _usage(model, 1 + rng.randrange(50), rng.choice(statuses))
        await add_request(engine, tenant_id, key_id, user, started, usage)
        if i % 17 == 0:  # a request that never finished: reports must not count it
            async with engine.begin() as conn:
                await open_request(conn, tenant_id, key_id, user, started, model)


async def _edge_rows(engine: AsyncEngine, data: Dataset) -> None:
    a, b = data.a, data.b
    rows: list[tuple[TenantKey | uuid.UUID, str | None, str, Usage]] = [
        (a, "alice", "2026-10-05T00:00:00", _usage(HAIKU, 1)),
        (a, "alice", "2026-10-05T11:59:59.999999", _usage(SONNET, 2)),
        (data.a2_key, "bob", "2026-10-05T12:00:00", _usage(HAIKU, 3)),
        (a, None, "2026-10-05T23:59:59.999999", _usage(HAIKU, 4)),
        (data.a2_key, "bob", "2026-10-06T00:00:00", _usage(SONNET, 5)),
        (b, "alice", "2026-10-06T08:00:00", _usage(HAIKU, 6)),
        (b, "carol", "2026-10-07T15:30:00", _usage(OPUS, 7)),
        (a, "alice", "2026-10-07T00:00:00", _usage(HAIKU, 8, "client_disconnected")),
        (a, "alice", "2026-10-07T01:00:00", Usage(HAIKU, status="abandoned")),
        (a, "only-a", "2026-10-08T09:00:00", _usage(SONNET, 9)),
    ]
    for who, user, at, usage in rows:
        if isinstance(who, uuid.UUID):
            tenant_id, key_id = a.tenant_id, who
        else:
            tenant_id, key_id = who.tenant_id, who.key_id
        await add_request(engine, tenant_id, key_id, user, utc(at), usage)
    async with engine.begin() as conn:  # in flight on a busy day: never counted
        await open_request(conn, a.tenant_id, a.key_id, "alice", utc("2026-10-06T10:00:00"))


@pytest.fixture
async def dataset(sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine) -> Dataset:
    a = await make_tenant_key(sessions, name="tenant-a")
    b = await make_tenant_key(sessions, name="tenant-b")
    async with sessions() as session, session.begin():
        a2 = await create_key(session, a.tenant_id, name="second")
    data = Dataset(a, a2.id, b)
    await _edge_rows(engine, data)
    await _random_volume(engine, data, 120)
    return data


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
