"""The dashboard (`GET /dashboard`) in a real browser: seeded usage drawn as a chart of spend per
day, top users and models, the tenant filter, and the CSV download."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from playwright.async_api import expect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.support import Gateway, TenantKey, make_tenant_key
from tests.web.conftest import Browser
from tests.web.seed import Expected, seed_usage

ADMIN_TOKEN = "t"
BAR_PIXELS = """() => {
  const canvas = document.getElementById('spend-chart');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let bar = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const [r, g, b] = [pixels[i], pixels[i + 1], pixels[i + 2]];
    if (Math.abs(r - 0xc1) < 8 && Math.abs(g - 0x5f) < 8 && Math.abs(b - 0x3c) < 8) bar++;
  }
  return bar;
}"""
CHART_DATA = """() => {
  const chart = Chart.getChart('spend-chart');
  return {labels: chart.data.labels, values: chart.data.datasets[0].data};
}"""

LONG_ID_ROW_HEIGHTS = """() => {
  const label = document.querySelector('#top-users tbody td.name span');
  const row = label.closest('tr');
  const before = row.getBoundingClientRect().height;
  label.textContent = 'user-' + '0123456789abcdef'.repeat(6);
  return {before, after: row.getBoundingClientRect().height,
          cut: label.scrollWidth > label.clientWidth};
}"""


def shown(amount: Decimal) -> str:
    """How the dashboard shows a cost: 4 decimal places, rounded half up."""
    return f"${amount.quantize(Decimal('0.0001'), rounding=ROUND_HALF_UP):,}"


def exact(title: str | None) -> Decimal:
    """The exact amount in a cost's tooltip ("$0.004215 (exact)")."""
    assert title is not None and title.endswith(" (exact)"), title
    return Decimal(title.removeprefix("$").removesuffix(" (exact)"))


async def table_names(browser: Browser, table: str) -> list[str]:
    return await browser.page.locator(f"#{table} tbody td.name").all_text_contents()


def ranked(costs: dict[str, Decimal]) -> list[str]:
    return [name for name, _ in sorted(costs.items(), key=lambda item: -item[1])]


async def assert_shows(browser: Browser, expected: Expected) -> None:
    page = browser.page
    chart: dict[str, Any] = await page.evaluate(CHART_DATA)
    assert len(chart["labels"]) == 30  # the default range: the last 30 days
    drawn = dict(zip(chart["labels"], chart["values"], strict=True))
    assert {day for day, value in drawn.items() if value} == {
        day.isoformat() for day in expected.by_day
    }
    for day, cost in expected.by_day.items():
        assert drawn[day.isoformat()] == float(cost)  # a float only to draw the bar
    assert await page.evaluate(BAR_PIXELS) > 200  # the bars are on the canvas
    assert await table_names(browser, "top-users") == ranked(expected.by_user)
    assert await table_names(browser, "top-models") == ranked(expected.by_model)
    total = page.locator("#total-cost")
    assert await total.text_content() == shown(expected.total)
    assert exact(await total.get_attribute("title")) == expected.total
    for table, costs in (("top-users", expected.by_user), ("top-models", expected.by_model)):
        cells = page.locator(f"#{table} tbody td.cost")
        want = sorted(costs.values(), reverse=True)
        assert await cells.all_text_contents() == [shown(cost) for cost in want]
        titles = [exact(await c.get_attribute("title")) for c in await cells.all()]
        assert titles == want
    assert await page.text_content("#total-requests") == str(expected.requests)


@dataclass
class Seeded:
    gateway: Gateway
    tenant: TenantKey
    mine: Expected  # what the dashboard shows for `tenant`
    everyone: Expected  # ... for all tenants


async def open_dashboard(
    gateway_factory: Callable[..., Gateway],
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    browser: Browser,
) -> Seeded:
    """Seed usage for two tenants, open the dashboard and sign in with the admin token; skips
    (after a screenshot) when this tree has no GET /admin/usage yet."""
    gateway = gateway_factory(admin_token=ADMIN_TOKEN)
    tenant = await make_tenant_key(sessions, name="acme")
    other = await make_tenant_key(sessions, name="globex")
    mine, everyone = await seed_usage(gateway, engine, tenant, other)
    page = browser.page
    await page.goto(gateway.url + "/dashboard")
    await page.fill("#token", ADMIN_TOKEN)
    await page.click("#sign-in")
    # The tenant filter is filled from GET /admin/tenants.
    await expect(page.locator("#tenant option")).to_have_count(3)
    assert await page.evaluate("sessionStorage.getItem('tollgate.admin.token')") == "t"
    await page.wait_for_selector('#status[data-state="loaded"]')
    return Seeded(gateway, tenant, mine, everyone)


async def test_dashboard_draws_seeded_spend_and_top_users(
    gateway_factory: Callable[..., Gateway],
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    browser: Browser,
) -> None:
    seeded = await open_dashboard(gateway_factory, engine, sessions, browser)
    page = browser.page
    await assert_shows(browser, seeded.everyone)
    users = await table_names(browser, "top-users")
    tenants = await page.locator("#top-users tbody td.muted").all_text_contents()
    assert dict(zip(users, tenants, strict=True)) == {
        "alice": "acme",
        "bob": "acme",
        "carol": "acme",
        "dave": "globex",
    }
    await browser.screenshot("dashboard.png")

    await page.select_option("#tenant", str(seeded.tenant.tenant_id))
    await page.click("#apply")  # the status is "loading" until the new answers are drawn
    await page.wait_for_selector('#status[data-state="loaded"]')
    await assert_shows(browser, seeded.mine)
    assert "dave" not in await table_names(browser, "top-users")
    assert browser.errors == []
    # A long id stays on one line (cut with an ellipsis, whole in the tooltip): the row with it
    # is as tall as before.
    heights = await page.evaluate(LONG_ID_ROW_HEIGHTS)
    assert heights["before"] == heights["after"] and heights["cut"], heights
    await browser.screenshot("dashboard-long-id.png")


async def test_dashboard_downloads_the_filtered_csv(
    gateway_factory: Callable[..., Gateway],
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    browser: Browser,
) -> None:
    seeded = await open_dashboard(gateway_factory, engine, sessions, browser)
    page = browser.page
    await page.select_option("#tenant", str(seeded.tenant.tenant_id))
    await page.select_option("#csv-group", "user")
    async with page.expect_download() as download_info:
        await page.click("#csv")
    download = await download_info.value
    today = datetime.now(UTC).date()
    start = today - timedelta(days=29)
    assert download.suggested_filename == f"tollgate-usage-by-user-{start}-to-{today}.csv"
    path = await download.path()
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert {row["user"]: Decimal(row["cost_usd"]) for row in rows} == seeded.mine.by_user
    assert browser.errors == []
