"""Request body schemas (JSON Schema, for `openapi_extra`) of the routes that read their body
themselves: they forward the raw bytes, so the body is not a pydantic model. The schemas state
what Tollgate checks; any other field is passed through to the upstream."""

from __future__ import annotations

from typing import Any

_STRING_OR_BLOCKS: dict[str, Any] = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]
}
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {"role": {"enum": ["user", "assistant"]}, "content": _STRING_OR_BLOCKS},
}
_USER_ID: dict[str, Any] = {
    "type": ["string", "null"],
    "minLength": 1,
    "maxLength": 256,
    "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$",
}
_TOOL: dict[str, Any] = {
    "type": "object",
    "properties": {"max_uses": {"type": "integer", "minimum": 1, "maximum": 1_000_000}},
}
_MODEL: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 256}
_MAX_TOKENS: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}

MESSAGES_BODY: dict[str, Any] = {
    "title": "MessagesRequest",
    "description": "Anthropic's Messages API request; fields not listed pass through.",
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        "model": _MODEL,
        "max_tokens": _MAX_TOKENS,
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "system": _STRING_OR_BLOCKS,
        "stream": {"type": "boolean"},
        "metadata": {"type": "object", "properties": {"user_id": _USER_ID}},
        "tools": {"anyOf": [{"type": "array", "items": _TOOL}, {"type": "null"}]},
    },
}

COUNT_TOKENS_BODY: dict[str, Any] = {
    "title": "CountTokensRequest",
    "description": "Anthropic's count_tokens request; fields not listed pass through.",
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": _MODEL,
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "system": _STRING_OR_BLOCKS,
        "tools": {"anyOf": [{"type": "array", "items": {"type": "object"}}, {"type": "null"}]},
    },
}

CHAT_BODY: dict[str, Any] = {
    "title": "ChatRequest",
    "description": "`message` (one user turn) or `messages` (a conversation).",
    "type": "object",
    "properties": {
        "message": {"type": "string", "minLength": 1},
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "system": {"anyOf": [*_STRING_OR_BLOCKS["anyOf"], {"type": "null"}]},
        "model": {"anyOf": [_MODEL, {"type": "null"}]},
        "max_tokens": _MAX_TOKENS,
        "user": _USER_ID,
    },
    "anyOf": [{"required": ["message"]}, {"required": ["messages"]}],
}

WEBHOOK_BODY: dict[str, Any] = {
    "title": "RazorpayEvent",
    "description": "A Razorpay webhook event, signed with X-Razorpay-Signature.",
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "payload": {"type": "object"},
        "created_at": {"type": "integer"},
    },
}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }
