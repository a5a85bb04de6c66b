"""The console with named admin tokens and the audit log: an admin creates a viewer token, a
tenant and a key there, uses the key, revokes it; the viewer sees every page read-only, cannot
create (the console offers no form, and the API answers 403), and finds each of those actions
in the audit log page."""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import pytest
from playwright.async_api import expect

from tests.support import Gateway
from tests.web.conftest import Browser
from tests.web.console import say_hello, shoot, sign_in
from tests.web.test_console import create_key, create_tenant, not_yet_on_main, revoke_first_key

ADMIN_TOKEN = "tg-console-admin-77c1"
TRY_CREATE = """async (token) => {
  const answer = await fetch('/admin/tenants', {method: 'POST',
    headers: {authorization: 'Bearer ' + token, 'content-type': 'application/json'},
    body: JSON.stringify({name: 'Sneaky Viewer Ltd'})});
  return {status: answer.status, body: await answer.json()};
}"""


async def create_viewer_token(browser: Browser, name: str) -> str:
    page = browser.page
    await page.goto(page.url.split("/console")[0] + "/console/tokens")
    await page.fill("#token-name", name)
    await page.select_option("#token-role", "viewer")
    await page.click("#create-token button[type=submit]")
    token = await page.locator("#new-token").input_value()
    await expect(page.locator("#token-list tbody")).to_contain_text(name)
    await shoot(browser, "tokens")
    return token


async def test_a_viewer_reads_everything_creates_nothing_and_the_audit_log_has_each_action(
    gateway_factory: Callable[..., Gateway], browser: Browser
) -> None:
    gateway = gateway_factory(admin_token=ADMIN_TOKEN)
    page = browser.page
    await sign_in(browser, gateway, ADMIN_TOKEN)
    await expect(page.locator("#whoami")).to_contain_text("role: admin")
    viewer = await create_viewer_token(browser, "ops-viewer")
    await page.goto(gateway.url + "/console")
    tenant_id = await create_tenant(browser, "Audited Inc")
    key = await create_key(browser, "audited-key")
    await say_hello(gateway, key)
    await revoke_first_key(browser)
    with pytest.raises(anthropic.AuthenticationError):
        await say_hello(gateway, key)

    await page.click("#forget-token")
    await page.fill("#token", viewer)
    await page.click("#sign-in")
    await expect(page.locator("#whoami")).to_contain_text("ops-viewer")
    await expect(page.locator("#whoami")).to_contain_text("role: viewer")
    await page.goto(gateway.url + "/console")
    await expect(page.locator("#tenants tbody")).to_contain_text("Audited Inc")
    assert await page.locator("#create-tenant").count() == 0
    await shoot(browser, "tenants-viewer")
    refused = await page.evaluate(TRY_CREATE, viewer)
    assert refused["status"] == 403, refused
    assert refused["body"]["error"]["type"] == "permission_error"

    await page.goto(f"{gateway.url}/console/tenants/{tenant_id}")
    await expect(page.locator("#key-list tbody .badge")).to_have_text(["revoked"])
    for form in ("#create-key", "#limits", "#user-limit", "#alerts-form", "#toggle-status"):
        assert await page.locator(form).count() == 0, form
    await page.goto(gateway.url + "/console/prices")
    await expect(page.locator("#price-list tbody")).to_contain_text("claude-haiku-4-5")
    assert await page.locator("#price-form").count() == 0  # read-only for viewers
    await expect(page.locator("#prices .readonly")).to_be_visible()

    await page.goto(gateway.url + "/console/audit")
    actions = page.locator("#audit-list tbody .action")
    await expect(actions).to_have_text(
        ["key.revoke", "key.create", "tenant.create", "admin_token.create"]
    )
    actors = await page.locator("#audit-list tbody td:nth-child(2)").all_text_contents()
    assert set(actors) == {"bootstrap"}
    await shoot(browser, "audit")
    await page.fill("#audit-action", "key.revoke")
    await page.click("#audit-filters button[type=submit]")
    await expect(actions).to_have_text(["key.revoke"])
    assert "action=key.revoke" in page.url
    assert not_yet_on_main(browser.errors) == ["http 403 POST /admin/tenants"]
