"""An admitted request's owner settles its row exactly once, whatever ends it: an explicit
settle, an upstream failure raised through it, cancellation (a client hang-up), a bug, or a pump
that ends without settling. Real Postgres, the real writer; the observer is a plain recorder."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.errors import TollgateError
from api.ledger.functions import OpenRequest, Settlement
from api.ledger.metered import MeteredRequest
from api.ledger.service import Ledger
from api.ledger.spool import Spool
from api.ledger.writer import LedgerWriter
from api.pricing.book import shipped_book
from api.pricing.cost import Usage
from api.pricing.resolve import resolve
from api.proxy.upstream import FirstByteTimeout, UpstreamRefused, UpstreamUnreachable
from api.quotas.periods import calendar_month
from api.quotas.service import enforce
from tests.support import make_tenant_key, settled_rows

MODEL = "claude-sonnet-4-6"


class Recorder:
    def __init__(self) -> None:
        self.decisions: list[str] = []
        self.settlements: list[Settlement] = []

    def reservation(self, endpoint: str, outcome: str) -> None:
        self.decisions.append(outcome)

    def settled(
        self, endpoint: str, settlement: Settlement, *, duration_s: float, ttft_s: float | None
    ) -> None:
        self.settlements.append(settlement)


@pytest.fixture
async def ledger(engine: AsyncEngine, tmp_path: Path) -> Ledger:
    ledger = Ledger(LedgerWriter(engine, Spool(tmp_path / "spool", "test-owner")))
    return ledger


async def admit(
    ledger: Ledger, sessions: async_sessionmaker[AsyncSession], recorder: Recorder
) -> MeteredRequest:
    key = await make_tenant_key(sessions, name=f"t-{uuid.uuid4().hex[:6]}")
    now = datetime.now(UTC)
    found = resolve(shipped_book(), MODEL, now, family=False)
    assert found is not None
    start, end = calendar_month(now)
    row = OpenRequest(
        id=uuid.uuid4(),
        tenant_id=key.tenant_id,
        api_key_id=key.key_id,
        end_user_id=None,
        endpoint="messages",
        model=MODEL,
        started_at=now,
        owner="test-owner",
        period_start=start,
        period_end=end,
        hard_usd=Decimal("0.01"),
        soft_usd=Decimal("0.01"),
    )
    ledger.observe(recorder)
    return await ledger.admit(row, found.price, enforce)


async def only_row(engine: AsyncEngine) -> dict[str, object]:
    """The one ledger row, once its settlement landed (settlements are written in batches)."""
    [row] = await settled_rows(engine, 1)
    return row


async def test_an_explicit_settle_counts_once(
    ledger: Ledger, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    recorder = Recorder()
    metered = await admit(ledger, sessions, recorder)
    async with metered:
        first = await metered.settle(Usage(input_tokens=10, output_tokens=5), "ok")
        again = await metered.settle(Usage(input_tokens=99), "incomplete")
    assert again is first and recorder.settlements == [first]
    row = await only_row(engine)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("ok", 10, 5)
    assert recorder.decisions == ["ok"]


@pytest.mark.parametrize(
    ("raised", "status", "error_type", "http_status"),
    [
        (FirstByteTimeout(), "timeout", "timeout_error", None),
        (UpstreamUnreachable("refused"), "upstream_error", "api_connection_error", None),
        (
            UpstreamRefused(529, b"{}", {"request-id": "req_1"}, "overloaded_error"),
            "upstream_error",
            "overloaded_error",
            529,
        ),
        (ValueError("a bug"), "incomplete", "api_error", None),
    ],
)
async def test_an_exception_through_the_owner_settles_with_its_status(
    ledger: Ledger,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    raised: Exception,
    status: str,
    error_type: str,
    http_status: int | None,
) -> None:
    recorder = Recorder()
    metered = await admit(ledger, sessions, recorder)
    with pytest.raises(type(raised)):
        async with metered:
            raise raised
    row = await only_row(engine)
    assert (row["status"], row["error_type"], row["http_status"]) == (
        status,
        error_type,
        http_status,
    )
    assert len(recorder.settlements) == 1
    if isinstance(raised, TollgateError):  # the answer carries the quota headers
        assert "tollgate-budget-limit-usd" in raised.headers


async def test_a_cancelled_request_settles_as_client_disconnected(
    ledger: Ledger, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    metered = await admit(ledger, sessions, Recorder())
    entered = asyncio.Event()

    async def handler() -> None:
        async with metered:
            entered.set()
            await asyncio.Event().wait()  # the upstream never answers; the client leaves

    task = asyncio.create_task(handler())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await only_row(engine))["status"] == "client_disconnected"


async def test_a_pump_that_ends_without_settling_is_settled_by_its_owner(
    ledger: Ledger, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    recorder = Recorder()
    metered = await admit(ledger, sessions, recorder)

    async def forgetful_pump() -> None:
        raise RuntimeError("the pump broke before settling")

    async with metered:
        pump = metered.spawn(forgetful_pump())
    # leaving the block did not settle: the pump owns the row
    await asyncio.wait({pump})
    assert (await only_row(engine))["status"] == "incomplete"
    assert len(recorder.settlements) == 1


async def test_shutdown_waits_for_a_pump_and_settles_it(
    ledger: Ledger, sessions: async_sessionmaker[AsyncSession], engine: AsyncEngine
) -> None:
    metered = await admit(ledger, sessions, Recorder())

    async def stuck_pump() -> None:
        await asyncio.Event().wait()

    async with metered:
        metered.spawn(stuck_pump())
    await ledger.stop(grace_s=0.1)  # the stuck pump is cancelled after the grace period
    assert (await only_row(engine))["status"] == "incomplete"
