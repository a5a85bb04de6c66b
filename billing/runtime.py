"""Billing's part of the app: its settings, the Razorpay gateway, and the background loops
(the inbox retry and the periodic sync). Created in the lifespan only when billing is on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from billing.gateway import RazorpayGateway
from billing.inbox import process_pending
from billing.settings import BillingSettings
from billing.sync import sync_forever

log = logging.getLogger(__name__)

INBOX_RETRY_S = 5.0


@dataclass
class BillingRuntime:
    settings: BillingSettings
    gateway: RazorpayGateway
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def start(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.tasks.append(asyncio.create_task(self._inbox_loop(sessions), name="billing-inbox"))
        self.tasks.append(
            asyncio.create_task(
                sync_forever(engine, sessions, self.gateway, self.settings), name="billing-sync"
            )
        )

    async def _inbox_loop(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        while True:
            await asyncio.sleep(INBOX_RETRY_S)
            with contextlib.suppress(Exception):
                applied = await process_pending(sessions, self.settings)
                if applied:
                    log.info("applied %d stored webhook events", applied)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
