"""Razorpay through its official SDK. The SDK is synchronous (`requests`) with no default
timeout and no retries: every call here runs in a worker thread, with a timeout, and turns any
failure into one typed error the callers handle (log it, retry on the next run).

The SDK (and `requests` under it, ~15 MB of memory) is imported when a gateway is built, that is
only in a process where billing is on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from billing.settings import BillingSettings

if TYPE_CHECKING:
    import razorpay


class RazorpayUnavailable(Exception):
    """Razorpay timed out, answered 5xx, or answered something we cannot read."""


class RazorpayRefused(Exception):
    """Razorpay refused the request (4xx): retrying the same call will not help."""


def _as_dict(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RazorpayUnavailable(f"{what}: malformed answer")
    return value


class RazorpayGateway:
    def __init__(self, settings: BillingSettings) -> None:
        import razorpay

        assert settings.key_id is not None and settings.key_secret is not None
        self._client: razorpay.Client = razorpay.Client(
            auth=(settings.key_id, settings.key_secret.get_secret_value()),
            base_url=settings.base_url,
        )
        self._timeout = float(settings.timeout_s)

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        import razorpay  # loaded by __init__: a lookup in sys.modules
        import requests

        def run() -> Any:
            return fn(*args, timeout=self._timeout)

        try:
            return _as_dict(await asyncio.to_thread(run), what)
        except razorpay.errors.BadRequestError as exc:
            raise RazorpayRefused(f"{what}: {exc}") from None
        except (
            razorpay.errors.ServerError,
            razorpay.errors.GatewayError,
            requests.RequestException,
            ValueError,  # a body that is not JSON
        ) as exc:
            raise RazorpayUnavailable(f"{what}: {type(exc).__name__}: {exc}") from None

    async def create_customer(self, name: str, notes: dict[str, str]) -> dict[str, Any]:
        body = {"name": name, "notes": notes, "fail_existing": "0"}
        return await self._call("customer.create", self._client.customer.create, body)

    async def create_subscription(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("subscription.create", self._client.subscription.create, body)

    async def fetch_subscription(self, subscription_id: str) -> dict[str, Any]:
        return await self._call(
            "subscription.fetch", self._client.subscription.fetch, subscription_id
        )

    async def create_addon(self, subscription_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call(
            "subscription.createAddon", self._client.subscription.createAddon, subscription_id, body
        )

    async def list_addons(self, count: int = 100, skip: int = 0) -> list[dict[str, Any]]:
        page = await self._call("addon.all", self._client.addon.all, {"count": count, "skip": skip})
        items = page.get("items")
        if not isinstance(items, list):
            raise RazorpayUnavailable("addon.all: malformed answer")
        return [item for item in items if isinstance(item, dict)]
