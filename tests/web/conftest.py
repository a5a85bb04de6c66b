"""A headless Chromium page per test, driven by Playwright's Python package.

Debian's `chromium` package is used as is (`/usr/bin/chromium`; `playwright install` is never
needed), with a fresh profile per test. Tests skip with the reason when it is missing."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import ConsoleMessage, Error, Page, Response

CHROMIUM = Path(os.environ.get("TOLLGATE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Browser:
    page: Page
    # Uncaught exceptions, console errors, and HTTP answers >= 400 ("http 401 GET /chat").
    errors: list[str] = field(default_factory=list)

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.async_api")
    async with playwright.async_playwright() as pw:
        # A persistent context on a fresh directory: the profile is this test's alone.
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
            accept_downloads=True,
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            page.set_default_timeout(15_000)
            found = Browser(page)

            def on_console(message: ConsoleMessage) -> None:
                # A failed load is also logged here, without its URL: on_response names it.
                if message.type == "error" and "Failed to load resource" not in message.text:
                    found.errors.append(f"console: {message.text}")

            def on_response(response: Response) -> None:
                if response.status >= 400:
                    path = response.url.split("//", 1)[-1].partition("/")[2]
                    found.errors.append(f"http {response.status} {response.request.method} /{path}")

            def on_page_error(error: Error) -> None:
                found.errors.append(f"uncaught: {error}")

            page.on("console", on_console)
            page.on("pageerror", on_page_error)
            page.on("response", on_response)
            yield found
        finally:
            await context.close()
