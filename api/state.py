"""Everything a request handler needs, created once in the app's lifespan and reached through
typed dependencies (never module globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.settings import Settings
from api.upstream_client import UpstreamClient

if TYPE_CHECKING:
    from api.keys.principal import KeyCache
    from api.keys.usage import KeyUsage
    from api.ledger.service import Ledger
    from api.observability.metrics import Metrics
    from api.pricing.live import LiveBook
    from api.tenants.users import UserDirectory
    from billing.runtime import BillingRuntime


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    upstream: UpstreamClient
    upstream_url: str
    simulated: bool
    prices: LiveBook  # .book is the price book in use
    ledger: Ledger
    users: UserDirectory
    key_cache: KeyCache
    key_usage: KeyUsage  # last_used_at, written in batches
    metrics: Metrics
    billing: BillingRuntime | None = None  # None until the RAZORPAY_* variables are set


async def get_state(request: Request) -> AppState:  # async: no threadpool hop per request
    state: AppState = request.app.state.tollgate
    return state


State = Annotated[AppState, Depends(get_state)]
