"""Message Batches and Files through a real Tollgate, with the official SDK: admission at batch
prices, settlement exactly once, isolation per tenant."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.simulator import RunningSimulator, start_simulator_thread
from tests.batches.helpers import MODEL, batch_requests
from tests.support import (
    Gateway,
    gateway_settings,
    ledger_rows,
    make_tenant_key,
    start_gateway,
    wait_until,
)

# "Hi there" = 5 input tokens; max_tokens 10 caps the simulator's reply at 10 output tokens.
STANDARD = Decimal(5 * 3 + 10 * 15) / 1_000_000  # $3 / $15 per million
HALF = STANDARD / 2


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    running = start_simulator_thread()
    yield running
    running.stop()


@pytest.fixture
def gateway(database_url: str, sim: RunningSimulator, tmp_path: Path) -> Iterator[Gateway]:
    settings = gateway_settings(tmp_path / "data", sim.url, batch_poll_s=Decimal("0.2"))
    gw = start_gateway(settings, database_url)
    yield gw
    gw.stop()


async def _counters(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT c.*, u.external_id FROM spend_counters c "
                "LEFT JOIN end_users u ON u.id = c.end_user_id"
            )
        )
        return [dict(r) for r in result.mappings()]


async def test_batch_of_100_settles_once_at_half_price_per_user(
    gateway: Gateway, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    tenant = await make_tenant_key(sessions)
    client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=tenant.key, max_retries=0)
    users = ["alice", "bob", "carol"]
    batch = await client.messages.batches.create(
        requests=batch_requests(100, users),  # type: ignore[arg-type]
        extra_headers={"x-sim-batch-errored": "^req(7|42|99)$"},
    )

    async def ended() -> bool:
        found = await client.messages.batches.retrieve(batch.id)
        return found.processing_status == "ended"

    await wait_until(ended, 20)
    results = [r async for r in await client.messages.batches.results(batch.id)]
    assert len(results) == 100

    async def settled() -> bool:
        return len(await ledger_rows(engine)) >= 100

    await wait_until(settled, 30)
    rows = await ledger_rows(engine)
    assert len(rows) == 100 and {r["endpoint"] for r in rows} == {"batch"}
    assert len({r["custom_id"] for r in rows}) == 100
    errored = {r["custom_id"] for r in rows if r["status"] == "upstream_error"}
    assert errored == {"req7", "req42", "req99"}
    for row in rows:
        expected = Decimal(0) if row["custom_id"] in errored else HALF
        assert row["cost_usd"] == expected, row
    counters = await _counters(engine)
    tenant_row = next(c for c in counters if c["end_user_id"] is None)
    assert tenant_row["spent_usd"] == HALF * 97 and tenant_row["reserved_usd"] == 0
    assert tenant_row["requests"] == 100 and tenant_row["in_flight"] == 0
    per_user = {c["external_id"]: c for c in counters if c["end_user_id"] is not None}
    # req i belongs to users[i % 3]; errored: 7 -> bob, 42 -> alice, 99 -> alice
    assert per_user["alice"]["spent_usd"] == HALF * (34 - 2)
    assert per_user["bob"]["spent_usd"] == HALF * (33 - 1)
    assert per_user["carol"]["spent_usd"] == HALF * 33
    assert all(c["reserved_usd"] == 0 for c in counters)
    usage = await client.get("/v1/usage", cast_to=dict[str, Any])  # type: ignore[type-var]
    assert Decimal(usage["spent_usd"]) == HALF * 97 and Decimal(usage["reserved_usd"]) == 0
    await client.close()


async def test_batch_over_budget_is_refused_whole_with_402(
    gateway: Gateway,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    sim: RunningSimulator,
) -> None:
    tenant = await make_tenant_key(sessions, plan="free")  # $5 budget
    client = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=tenant.key, max_retries=0)
    before = len(sim.app.calls)
    big = batch_requests(10, ["dave"])
    for entry in big:
        entry["params"]["max_tokens"] = 200_000  # 10 x 200k x $15/M / 2 = $15 > $5
    with pytest.raises(anthropic.APIStatusError) as refused:
        await client.messages.batches.create(requests=big)  # type: ignore[arg-type]
    assert refused.value.status_code == 402
    assert len(sim.app.calls) == before
    assert await ledger_rows(engine) == []
    assert all(c["reserved_usd"] == 0 for c in await _counters(engine))
    await client.close()


async def test_other_tenant_gets_404_everywhere_and_nothing_reaches_upstream(
    gateway: Gateway,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    sim: RunningSimulator,
) -> None:
    owner = await make_tenant_key(sessions, name="owner")
    other = await make_tenant_key(sessions, name="other")
    mine = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=owner.key, max_retries=0)
    theirs = anthropic.AsyncAnthropic(base_url=gateway.url, api_key=other.key, max_retries=0)
    batch = await mine.messages.batches.create(requests=batch_requests(2, ["u"]))  # type: ignore[arg-type]
    before_upload = len(sim.app.calls)
    uploaded = await mine.beta.files.upload(
        file=("a.txt", b"secret", "text/plain"),
        betas=["files-api-2025-04-14"],
        extra_headers={"x-sim-file-downloadable": "true"},
    )
    # The batch settler polls this simulator meanwhile: find the upload among the new calls.
    uploads = [c for c in list(sim.app.calls)[before_upload:] if c.method == "POST"]
    assert [c.beta for c in uploads] == ["files-api-2025-04-14"]
    assert await (await mine.files.download(uploaded.id)).read() == b"secret"

    async def settled() -> bool:  # after which the settler stops polling the upstream
        async with engine.connect() as conn:
            state = await conn.scalar(text("SELECT state FROM batches"))
        return bool(state == "settled")

    await wait_until(settled, 20)
    before = len(sim.app.calls)
    attempts = [
        theirs.messages.batches.retrieve(batch.id),
        theirs.messages.batches.cancel(batch.id),
        theirs.messages.batches.delete(batch.id),
        theirs.get(f"/v1/messages/batches/{batch.id}/results", cast_to=bytes),
        theirs.files.retrieve_metadata(uploaded.id),
        theirs.files.download(uploaded.id),
        theirs.files.delete(uploaded.id),
    ]
    for attempt in attempts:
        with pytest.raises(anthropic.NotFoundError):
            await attempt
    doc = {"type": "document", "source": {"type": "file", "file_id": uploaded.id}}
    with pytest.raises(anthropic.NotFoundError):
        await theirs.messages.create(
            model=MODEL,
            max_tokens=5,
            messages=[{"role": "user", "content": [doc]}],  # type: ignore[list-item]
        )
    container = {"type": "container_upload", "file_id": uploaded.id}
    foreign = batch_requests(1, ["x"])
    foreign[0]["params"]["messages"] = [{"role": "user", "content": [container]}]
    with pytest.raises(anthropic.NotFoundError):
        await theirs.messages.batches.create(requests=foreign)  # type: ignore[arg-type]
    assert len(sim.app.calls) == before  # none of it reached the upstream
    assert [b.id async for b in theirs.messages.batches.list()] == []
    assert [f.id async for f in theirs.files.list()] == []
    assert [b.id async for b in mine.messages.batches.list()] == [batch.id]
    assert [f.id async for f in mine.files.list()] == [uploaded.id]
    # the owner can still use its own file
    await mine.messages.create(
        model=MODEL,
        max_tokens=5,
        messages=[{"role": "user", "content": [doc]}],  # type: ignore[list-item]
    )
    await mine.close()
    await theirs.close()
