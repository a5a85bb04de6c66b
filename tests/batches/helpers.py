"""Shared by the batch tests: the requests of a batch, as the SDK sends them."""

from __future__ import annotations

from typing import Any

MODEL = "claude-sonnet-4-6"


def batch_requests(
    n: int, users: list[str] | None = None, prefix: str = "req"
) -> list[dict[str, Any]]:
    """`n` requests `<prefix>0…`: "Hi there" (5 input tokens) with max_tokens 10 (the
    simulator's reply is 10 output tokens); request i is end user `users[i % len(users)]`."""
    requests: list[dict[str, Any]] = []
    for i in range(n):
        params: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "Hi there"}],
        }
        if users:
            params["metadata"] = {"user_id": users[i % len(users)]}
        requests.append({"custom_id": f"{prefix}{i}", "params": params})
    return requests
