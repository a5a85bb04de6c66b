"""Reading a simulated-upstream request: validation, the deterministic input-token count,
and the errors it raises in Anthropic's shape."""

from __future__ import annotations

import json
from dataclasses import dataclass

from api.simulator.extras import Extras, ExtrasError, check_image, parse_extras

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class SimError(Exception):
    """An expected failure, rendered in Anthropic's error shape."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = ERROR_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        self.message = message
        self.headers = headers or []


def invalid(message: str) -> SimError:
    return SimError(400, message)


@dataclass(frozen=True, slots=True)
class SimRequest:
    model: str
    max_tokens: int
    stream: bool
    input_tokens: int
    extras: Extras | None = None  # tools, tool_choice, output_config (see extras.py)
    speed: str = "standard"  # "fast" when asked for: usage.speed reports what served
    inference_geo: str = "global"  # "us" when asked for: usage.inference_geo reports it


# `system` turns inside `messages`: Claude Code 2.1 sends them (beta per-turn-control-2026-07-01)
_ROLES = ("user", "assistant", "system")


def _content_bytes(content: object, where: str) -> int:
    """UTF-8 bytes of a `system` or message `content` value (str or list of blocks)."""
    if isinstance(content, str):
        return len(content.encode())
    if not isinstance(content, list):
        raise invalid(f"{where}: expected a string or a list of content blocks")
    total = 0
    for block in content:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid(f"{where}: each content block must be an object with a 'type'")
        text = block.get("text")
        if block["type"] == "text" and isinstance(text, str):
            total += len(text.encode())
            continue
        if block["type"] == "image":
            try:
                check_image(block, where)
            except ExtrasError as error:
                raise invalid(str(error)) from None
        total += len(json.dumps(block))
    return total


def count_input_tokens(system: object, messages: list[object]) -> int:
    """Deterministic input-token count: ceil(bytes / 4) + 3 per message + 3 for a system prompt.

    Never above `UTF-8 bytes of all text + 16 per message + 16`.
    """
    nbytes = 0
    has_system = system is not None and system != "" and system != []
    if has_system:
        nbytes += _content_bytes(system, "system")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise invalid(
                f"messages.{i}: expected an object with role 'user', 'assistant' or 'system'"
            )
        if "content" not in message:
            raise invalid(f"messages.{i}.content: Field required")
        nbytes += _content_bytes(message["content"], f"messages.{i}.content")
    tokens = -(-nbytes // 4) + 3 * len(messages) + (3 if has_system else 0)
    return max(tokens, 1)


def parse_request(raw: bytes, *, count_only: bool) -> SimRequest:
    """Validate a request body; raises `SimError` (400) when it is not acceptable."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: Field required (a non-empty string)")
    given = body.get("max_tokens", 0 if count_only else None)
    # JSON integers: 1024.0 is one (Anthropic's validation reads it as 1024)
    max_tokens = int(given) if isinstance(given, float) and given.is_integer() else given
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise invalid("max_tokens: Field required (a positive integer)")
    if max_tokens < 1 and not count_only:
        raise invalid("max_tokens: must be a positive integer")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: Field required (a non-empty list)")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid("stream: expected a boolean")
    tokens = count_input_tokens(body.get("system"), messages)
    try:
        extras = parse_extras(body)
    except ExtrasError as error:
        raise invalid(str(error)) from None
    speed = "fast" if body.get("speed") == "fast" else "standard"
    geo = "us" if body.get("inference_geo") == "us" else "global"
    return SimRequest(model, max_tokens, stream, tokens, extras, speed, geo)
