"""Helpers for the console's browser tests: sign in, take the desktop and 360 px screenshots of a
page (and check that it has no sideways scroll at 360 px), and call the API with a tenant key.

Screenshots go to `test-artifacts/console/` (git-ignored), or to `$TOLLGATE_CONSOLE_ARTIFACTS`."""

from __future__ import annotations

import os
from pathlib import Path

import anthropic

from tests.support import Gateway
from tests.web.conftest import ARTIFACTS, Browser

SHOTS = Path(os.environ.get("TOLLGATE_CONSOLE_ARTIFACTS", ARTIFACTS / "console"))
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 780}
MODEL = "claude-haiku-4-5"

# The page is as wide as the window (tables scroll inside their panel, not the page).
PAGE_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter((el) => !el.closest('.scroll') && el.getBoundingClientRect().right > width + 1)
    .map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '.' + el.className);
  return {scroll: document.documentElement.scrollWidth - width, wide: wide.slice(0, 5)};
}"""


async def sign_in(browser: Browser, gateway: Gateway, token: str, path: str = "/console") -> None:
    page = browser.page
    await page.goto(gateway.url + path)
    await page.fill("#token", token)
    await page.click("#sign-in")
    await page.wait_for_selector("#whoami:not(:empty)")


async def settle(browser: Browser) -> None:
    """Wait until the view has drawn (the status line is no longer "loading")."""
    await browser.page.wait_for_selector('#status:not([data-state="loading"])', state="attached")


async def shoot(browser: Browser, name: str) -> list[Path]:
    """Desktop and 360 px screenshots of the current page; asserts no sideways page scroll."""
    page = browser.page
    SHOTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for label, size in (("desktop", DESKTOP), ("360", PHONE)):
        await page.set_viewport_size(size)
        await settle(browser)
        if label == "360":
            overflow = await page.evaluate(PAGE_OVERFLOW)
            assert overflow["scroll"] <= 0, (name, overflow)
        path = SHOTS / f"{name}-{label}.png"
        await page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    await page.set_viewport_size(DESKTOP)
    return paths


def sdk(gateway: Gateway, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0)


async def say_hello(gateway: Gateway, key: str, user: str | None = None) -> str:
    """One /v1/messages request through the anthropic SDK; returns the message id."""
    reply = await sdk(gateway, key).messages.create(
        model=MODEL,
        max_tokens=8,
        messages=[{"role": "user", "content": "Hello from the console"}],
        metadata={"user_id": user} if user else anthropic.NOT_GIVEN,
    )
    return reply.id
