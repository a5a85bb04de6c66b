"""An Anthropic Message as an OpenAI `chat.completion`, and the pieces the stream shares:
finish_reason and usage.

Text blocks are joined into `content`; `tool_use` blocks become `tool_calls` (arguments as a
JSON string); thinking text is returned as `reasoning_content` (the field other
OpenAI-compatible servers use; OpenAI's SDK keeps unknown fields) and counted in
`completion_tokens_details.reasoning_tokens` when the upstream reports it. The input of a
forced answer tool (response_format) is returned as `content`, with finish_reason `stop`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from api.metering.meter import UsageMeter
from api.pricing.cost import Usage

FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None, *, answer_tool_used: bool = False) -> str | None:
    if stop_reason is None:
        return None
    if stop_reason == "tool_use" and answer_tool_used:
        return "stop"
    return FINISH_REASONS.get(stop_reason, "stop")


def reasoning_tokens_of(usage: object) -> int:
    """`output_tokens_details.thinking_tokens` of an Anthropic usage object, else 0."""
    details = usage.get("output_tokens_details") if isinstance(usage, Mapping) else None
    value = details.get("thinking_tokens") if isinstance(details, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def openai_usage(usage: Usage, reasoning_tokens: int = 0) -> dict[str, Any]:
    """OpenAI's usage: the prompt includes cache reads and cache writes."""
    prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_creation_input_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_id(message_id: object) -> str:
    return f"chatcmpl-{message_id}" if isinstance(message_id, str) else "chatcmpl-tollgate"


def translate_message(
    message: Mapping[str, Any], model: str, answer_tool: str | None = None
) -> dict[str, Any]:
    """The `chat.completion` for a non-streaming Anthropic Message."""
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    answer_tool_used = False
    for block in message.get("content") or []:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "thinking":
            thinking.append(str(block.get("thinking", "")))
        elif kind == "tool_use" and answer_tool is not None and block.get("name") == answer_tool:
            answer_tool_used = True
            texts.append(json.dumps(block.get("input", {}), ensure_ascii=False))
        elif kind == "tool_use":
            calls.append(_tool_call(block))
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
        "annotations": [],
    }
    if calls:
        reply["tool_calls"] = calls
    if thinking:
        reply["reasoning_content"] = "".join(thinking)
    meter = UsageMeter()
    meter.observe_message(message)
    stop = message.get("stop_reason")
    return {
        "id": completion_id(message.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(
                    stop if isinstance(stop, str) else None, answer_tool_used=answer_tool_used
                ),
            }
        ],
        "usage": openai_usage(meter.usage, reasoning_tokens_of(message.get("usage"))),
        "system_fingerprint": None,
    }


def _tool_call(block: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {
            "name": block.get("name"),
            "arguments": json.dumps(block.get("input", {}), ensure_ascii=False),
        },
    }
