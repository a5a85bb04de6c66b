"""The playground (`GET /`) in a real browser against a real Tollgate and the simulated
upstream: the streamed text and the cost it shows are exactly what was sent and billed."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from api.pricing.cost import format_usd
from api.simulator.app import TOKENS
from tests.support import Gateway, TenantKey, settled_rows
from tests.web.conftest import Browser


def simulated_reply(output_tokens: int) -> str:
    """The simulator's answer: token i is TOKENS[i % 16]."""
    return "".join(TOKENS[i % len(TOKENS)] for i in range(output_tokens))


async def test_the_pages_are_served_with_a_strict_content_security_policy(
    gateway: Gateway,
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for path in ("/", "/dashboard"):
            page = await http.get(path)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert "script-src 'self'" in page.headers["content-security-policy"]
        for path in ("/static/sse.js", "/static/vendor/chart.umd.js", "/static/style.css"):
            assert (await http.get(path)).status_code == 200, path


async def test_playground_streams_the_reply_and_shows_the_billed_cost(
    gateway: Gateway, tenant: TenantKey, engine: AsyncEngine, browser: Browser
) -> None:
    page = browser.page
    await page.goto(gateway.url + "/")
    await page.fill("#key", tenant.key)
    await page.fill("#user", "playground-user")
    await page.fill("#message", "Hello from a browser")
    await page.click("#send")
    await page.wait_for_selector('#status[data-state="done"]')

    [row] = await settled_rows(engine, 1)
    assert row["status"] == "ok" and row["endpoint"] == "chat"
    assert row["output_tokens"] > 16  # long enough to wrap the simulator's 16 tokens
    shown = await page.locator(".turn.assistant .text").text_content()
    assert shown == simulated_reply(row["output_tokens"])
    cost = await page.text_content("#usage-cost")
    assert cost == "$" + format_usd(row["cost_usd"])
    assert Decimal(cost.removeprefix("$")) == row["cost_usd"]
    assert await page.text_content("#request-id") == str(row["id"])
    assert await page.text_content("#usage-output") == f"{row['output_tokens']:,}"
    assert await page.text_content("#usage-input") == f"{row['input_tokens']:,}"
    stored = await page.evaluate("sessionStorage.getItem('tollgate.playground.key')")
    assert stored == tenant.key
    await browser.screenshot("playground.png")

    # A refused request is rendered as the error it is, and is not kept in the conversation.
    await page.fill("#key", "tg_live_not-a-real-key")
    await page.fill("#message", "Again")
    await page.click("#send")
    await page.wait_for_selector('#status[data-state="error"]')
    assert "authentication_error" in (await page.text_content("#status") or "")
    assert await page.locator(".turn.failed").count() == 1
    assert browser.errors == ["http 401 POST /chat"]
