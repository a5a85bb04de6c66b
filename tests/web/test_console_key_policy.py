"""A key's policy and rotation from the console: allowed models and a budget set at creation are
enforced on /v1/messages (403 for another model), edited in the policy dialog, and a rotation
gives a new key (shown once) while the old one keeps working until its revocation time."""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import pytest
from playwright.async_api import expect

from tests.support import Gateway
from tests.web.conftest import Browser
from tests.web.console import sdk, shoot, sign_in
from tests.web.test_console import create_tenant, not_yet_on_main

ADMIN_TOKEN = "tg-console-admin-policy"
HELLO = [{"role": "user", "content": "Hello"}]


async def ask(gateway: Gateway, key: str, model: str) -> str:
    reply = await sdk(gateway, key).messages.create(model=model, max_tokens=8, messages=HELLO)
    return reply.id


async def test_key_policy_is_enforced_edited_and_the_key_rotated_from_the_console(
    gateway_factory: Callable[..., Gateway], browser: Browser
) -> None:
    gateway = gateway_factory(admin_token=ADMIN_TOKEN)
    page = browser.page
    await sign_in(browser, gateway, ADMIN_TOKEN)
    await create_tenant(browser, "Policy Co")
    await page.fill("#key-name", "haiku-only")
    await page.fill("#key-models", "claude-haiku-*")
    await page.fill("#key-budget", "5")
    await page.click("#create-key button[type=submit]")
    key = await page.locator("#new-key").input_value()
    row = page.locator("#key-list tbody tr").first
    await expect(row).to_contain_text("claude-haiku-*")
    await expect(row).to_contain_text("$5.00")
    await ask(gateway, key, "claude-haiku-4-5")
    with pytest.raises(anthropic.PermissionDeniedError):
        await ask(gateway, key, "claude-sonnet-4-6")

    await row.get_by_role("button", name="Edit").click()
    await expect(page.locator("dialog#edit-key")).to_be_visible()
    await page.fill("#edit-models", "")
    await page.click("dialog#edit-key button[value=ok]")
    await expect(row).to_contain_text("plan's")
    await ask(gateway, key, "claude-sonnet-4-6")

    await row.get_by_role("button", name="Rotate").click()
    await page.select_option("#rotate-grace", "86400")
    await page.click("dialog#rotate-key button[value=ok]")
    new_key = await page.locator("#new-key").input_value()
    assert new_key != key and new_key.startswith("tg_")
    await expect(page.locator("#key-list tbody tr")).to_have_count(2)
    await expect(page.locator("#key-list tbody .badge")).to_contain_text(["revoking", "active"])
    await ask(gateway, key, "claude-haiku-4-5")  # both work until the old one's time comes
    await ask(gateway, new_key, "claude-haiku-4-5")
    await shoot(browser, "tenant-key-rotated")
    assert not_yet_on_main(browser.errors) == []
