"""Request body schemas (JSON Schema, for `openapi_extra`) of the routes that read their body
themselves: they forward the raw bytes, so the body is not a pydantic model. The schemas state
what Tollgate checks and what the upstream refuses outright (a content block without a `type`,
a tool without a `name`); any other field is passed through to the upstream. Rules JSON Schema
cannot state are in the descriptions (web search `max_uses` at most 1,000,000 in all)."""

from __future__ import annotations

from typing import Any

from api.inputs import MAX_USER_ID_LENGTH, text_schema

MAX_TOKENS = 2**31 - 1
_EXAMPLE_MODEL = "claude-sonnet-4-6"

_BLOCK: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string"}},
}
_STRING_OR_BLOCKS: dict[str, Any] = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": _BLOCK}]
}
_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {"role": {"enum": ["user", "assistant"]}, "content": _STRING_OR_BLOCKS},
}
_MESSAGES: dict[str, Any] = {"type": "array", "minItems": 1, "items": _MESSAGE}
_USER_ID = text_schema(MAX_USER_ID_LENGTH)
_NULLABLE_USER_ID: dict[str, Any] = {"anyOf": [_USER_ID, {"type": "null"}]}
_SYSTEM: dict[str, Any] = {"anyOf": [*_STRING_OR_BLOCKS["anyOf"], {"type": "null"}]}
_TOOLS: dict[str, Any] = {
    "anyOf": [
        {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "max_uses": {
                        "anyOf": [
                            {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                            {"type": "null"},
                        ]
                    },
                },
            },
        },
        {"type": "null"},
    ],
    "description": "web search tools' max_uses: at most 1,000,000 in all (they are reserved)",
}
_MODEL: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 256,
    "examples": [_EXAMPLE_MODEL],
}
_MAX_TOKENS: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_TOKENS}

MESSAGES_BODY: dict[str, Any] = {
    "title": "MessagesRequest",
    "description": "Anthropic's Messages API request; fields not listed pass through.",
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        "model": _MODEL,
        "max_tokens": _MAX_TOKENS,
        "messages": _MESSAGES,
        "system": _SYSTEM,
        "stream": {"type": "boolean"},
        "metadata": {
            "anyOf": [
                {"type": "object", "properties": {"user_id": _NULLABLE_USER_ID}},
                {"type": "null"},
            ]
        },
        "tools": _TOOLS,
    },
}

COUNT_TOKENS_BODY: dict[str, Any] = {
    "title": "CountTokensRequest",
    "description": "Anthropic's count_tokens request; fields not listed pass through.",
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": _MODEL,
        "max_tokens": {"type": "integer"},
        "messages": _MESSAGES,
        "system": _SYSTEM,
        "stream": {"type": "boolean"},
        "tools": _TOOLS,
    },
}

CHAT_BODY: dict[str, Any] = {
    "title": "ChatRequest",
    "description": "`message` (one user turn) or `messages` (a conversation; `message` is then "
    "ignored). Without `model`, TOLLGATE_DEFAULT_MODEL.",
    "type": "object",
    "properties": {
        "message": {"description": "a non-empty string, unless messages is given"},
        "messages": {"anyOf": [_MESSAGES, {"type": "null"}]},
        "system": _SYSTEM,
        "model": {"anyOf": [_MODEL, {"type": "null"}]},
        "max_tokens": _MAX_TOKENS,
        "user": _NULLABLE_USER_ID,
    },
    "anyOf": [
        {"required": ["messages"], "properties": {"messages": {"type": "array"}}},
        {
            "required": ["message"],
            "properties": {
                "message": {"type": "string", "minLength": 1},
                "messages": {"type": "null"},
            },
        },
    ],
}

_OPENAI_MESSAGE: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "required": ["role", "content"],
            "properties": {
                "role": {"const": "user"},
                "content": {"type": "string"},
            },
        },
        {
            "type": "object",
            "required": ["role", "content"],
            "properties": {
                "role": {"enum": ["system", "developer"]},
                "content": {"type": "string"},
            },
        },
    ]
}

CHAT_COMPLETIONS_BODY: dict[str, Any] = {
    "title": "ChatCompletionRequest",
    "description": "OpenAI's chat completion request. Listed here: the common fields; Tollgate "
    "also maps tools, tool_choice, response_format, stop, temperature, top_p, "
    "reasoning_effort and stream_options, and refuses what Claude cannot honour.",
    "type": "object",
    "additionalProperties": False,
    "required": ["model", "messages"],
    "properties": {
        "model": _MODEL,
        "messages": {
            "type": "array",
            "minItems": 1,
            "items": _OPENAI_MESSAGE,
            "description": "at least one user (or assistant) message",
            "contains": {"properties": {"role": {"const": "user"}}},
        },
        "stream": {"type": ["boolean", "null"]},
        "max_completion_tokens": {"anyOf": [_MAX_TOKENS, {"type": "null"}]},
        "user": _NULLABLE_USER_ID,
    },
}

BATCH_BODY: dict[str, Any] = {
    "title": "MessageBatchRequest",
    "description": "Anthropic's batch request; each `params` is a Messages request, checked "
    "when the batch runs (a bad one ends `errored`, at no cost). custom_ids are unique.",
    "type": "object",
    "required": ["requests"],
    "properties": {
        "requests": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100_000,
            "items": {
                "type": "object",
                "required": ["custom_id", "params"],
                "properties": {
                    "custom_id": {"type": "string", "minLength": 1, "maxLength": 64},
                    "params": {
                        "type": "object",
                        "required": ["model", "max_tokens", "messages"],
                        "properties": {
                            "model": _MODEL,
                            "max_tokens": _MAX_TOKENS,
                            "messages": {"type": "array", "minItems": 1},
                            "metadata": {"properties": {"user_id": _NULLABLE_USER_ID}},
                        },
                    },
                },
            },
        }
    },
}

FILE_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
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
