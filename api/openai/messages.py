"""OpenAI chat messages to Anthropic `system` + `messages`.

- `system` and `developer` messages, wherever they appear, become the top-level `system`
  text blocks, in order (Anthropic has one system prompt per request).
- `user` text and image parts become text and image blocks: a `data:` URL becomes a base64
  source, an `https:` URL a url source. Audio and file parts are refused.
- `assistant` text becomes text blocks and its `tool_calls` become `tool_use` blocks (the
  arguments must be a JSON object).
- `tool` messages become `tool_result` blocks; consecutive turns of the same role (e.g. the
  results of parallel tool calls, or a user message after them) are merged into one turn.
- A message's `name` has no Anthropic counterpart and is not sent; nor is an empty message.
"""

from __future__ import annotations

from typing import Any

from api.openai.errors import OpenAIRequestError, UnsupportedParameter
from api.openai.jsonbody import parse_strict_object

Block = dict[str, Any]
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def convert_messages(raw: object) -> tuple[list[Block], list[dict[str, Any]]]:
    """(system blocks, Anthropic messages) for the OpenAI `messages` list."""
    if not isinstance(raw, list) or not raw:
        raise OpenAIRequestError("messages: must be a non-empty array", "messages")
    system: list[Block] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise OpenAIRequestError(f"{where}: must be an object", where)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"{where}.content"))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{where}.content")
            anthropic_role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
            anthropic_role = "assistant"
        elif role == "tool":
            blocks = [_tool_result(message, where)]
            anthropic_role = "user"
        elif role == "function":
            raise UnsupportedParameter(
                f"{where}.role", "'function' messages are deprecated; use tools and 'tool'"
            )
        else:
            raise OpenAIRequestError(f"{where}.role: unknown role {role!r}", f"{where}.role")
        _append(turns, anthropic_role, blocks)
    if not turns:
        raise OpenAIRequestError(
            "messages: at least one user or assistant message is required", "messages"
        )
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, blocks: list[Block]) -> None:
    if not blocks:
        return  # an empty message says nothing (and Anthropic refuses empty turns)
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _parts(content: object, where: str) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return content
    raise OpenAIRequestError(f"{where}: must be a string or an array of content parts", where)


def _text_of_part(part: object, where: str) -> str:
    if not isinstance(part, dict) or part.get("type") != "text":
        raise OpenAIRequestError(f"{where}: only text parts are allowed here", where)
    text = part.get("text")
    if not isinstance(text, str):
        raise OpenAIRequestError(f"{where}.text: must be a string", f"{where}.text")
    return text


def _text_blocks(content: object, where: str) -> list[Block]:
    blocks: list[Block] = []
    for j, part in enumerate(_parts(content, where)):
        text = _text_of_part(part, f"{where}[{j}]")
        if text:
            blocks.append({"type": "text", "text": text})
    return blocks


def _user_blocks(content: object, where: str) -> list[Block]:
    blocks: list[Block] = []
    for j, part in enumerate(_parts(content, where)):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": _text_of_part(part, at)})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url"), f"{at}.image_url"))
        elif kind in ("input_audio", "file"):
            raise UnsupportedParameter(at, f"'{kind}' content parts are not supported")
        else:
            raise OpenAIRequestError(f"{at}.type: unknown content part type {kind!r}", at)
    return blocks


def _image(spec: object, where: str) -> Block:
    url = spec.get("url") if isinstance(spec, dict) else None
    if not isinstance(url, str):
        raise OpenAIRequestError(f"{where}.url: must be a string", f"{where}.url")
    if url.startswith("https://"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    if not url.startswith("data:"):
        raise OpenAIRequestError(
            f"{where}.url: must be an https URL or a base64 data URL", f"{where}.url"
        )
    header, comma, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64" or not data:
        raise OpenAIRequestError(
            f"{where}.url: a data URL must look like data:image/png;base64,...", f"{where}.url"
        )
    if media_type not in IMAGE_MEDIA_TYPES:
        raise OpenAIRequestError(
            f"{where}.url: image type {media_type!r} is not supported "
            f"(use one of {', '.join(sorted(IMAGE_MEDIA_TYPES))})",
            f"{where}.url",
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_blocks(message: dict[str, Any], where: str) -> list[Block]:
    for legacy in ("function_call", "audio"):
        if message.get(legacy) is not None:
            raise UnsupportedParameter(f"{where}.{legacy}", "is not supported")
    blocks: list[Block] = []
    content = message.get("content")
    if content is not None:
        for j, part in enumerate(_parts(content, f"{where}.content")):
            at = f"{where}.content[{j}]"
            if isinstance(part, dict) and part.get("type") == "refusal":
                text = part.get("refusal")
            else:
                text = _text_of_part(part, at)
            if isinstance(text, str) and text:
                blocks.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    if not blocks and isinstance(refusal, str) and refusal:
        blocks.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise OpenAIRequestError(f"{where}.tool_calls: must be an array", f"{where}.tool_calls")
        blocks.extend(_tool_use(call, f"{where}.tool_calls[{k}]") for k, call in enumerate(calls))
    return blocks


def _tool_use(call: object, where: str) -> Block:
    if not isinstance(call, dict) or call.get("type", "function") != "function":
        raise OpenAIRequestError(f"{where}: only function tool calls are supported", where)
    call_id, function = call.get("id"), call.get("function")
    if not isinstance(call_id, str) or not call_id:
        raise OpenAIRequestError(f"{where}.id: must be a non-empty string", f"{where}.id")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise OpenAIRequestError(f"{where}.function.name: required", f"{where}.function.name")
    arguments = function.get("arguments")
    at = f"{where}.function.arguments"
    if not isinstance(arguments, str):
        raise OpenAIRequestError(f"{at}: must be a JSON string", at)
    try:
        parsed = parse_strict_object(arguments.encode()) if arguments.strip() else {}
    except OpenAIRequestError:
        raise OpenAIRequestError(f"{at}: must be a JSON object (as a string)", at) from None
    return {"type": "tool_use", "id": call_id, "name": function["name"], "input": parsed}


def _tool_result(message: dict[str, Any], where: str) -> Block:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise OpenAIRequestError(
            f"{where}.tool_call_id: must be a non-empty string", f"{where}.tool_call_id"
        )
    content = message.get("content")
    if isinstance(content, str):
        return {"type": "tool_result", "tool_use_id": call_id, "content": content}
    blocks = _text_blocks(content, f"{where}.content")
    return {"type": "tool_result", "tool_use_id": call_id, "content": blocks}
