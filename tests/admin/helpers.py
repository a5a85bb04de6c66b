"""Shared by the admin tests: the token the admin gateway is started with, and error checks."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx

from tests.support import Gateway

ADMIN_TOKEN = "tg-admin-7c1f0e9a5b2d4c86"
MODEL = "claude-haiku-4-5"
MESSAGES: list[Any] = [{"role": "user", "content": "Hello, Claude"}]


def assert_error(response: httpx.Response, status: int, error_type: str) -> str:
    """The response is an error in Anthropic's shape; returns its message."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert isinstance(body["request_id"], str) and body["request_id"]
    message: str = body["error"]["message"]
    return message


def sdk(gateway: Gateway, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0)
