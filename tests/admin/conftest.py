"""A gateway with the admin API on, and an httpx client that carries the admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.admin.helpers import ADMIN_TOKEN
from tests.support import Gateway


@pytest.fixture
def admin_gateway(gateway_factory: Callable[..., Gateway]) -> Gateway:
    return gateway_factory(admin_token=ADMIN_TOKEN)


@pytest.fixture
async def admin(admin_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=admin_gateway.url, headers=headers) as client:
        yield client
