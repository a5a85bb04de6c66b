"""Tool calls and structured outputs in the simulated upstream.

- Tool calls: when a request has `tools` and its `tool_choice` is not `none`, the answer ends
  with `tool_calls` `tool_use` blocks (knob `x-sim-tool-calls`, default 0). A forced choice
  (`any` or `tool`) always calls at least one tool and writes no text, as Claude does. Tools
  are picked in order (the named one when forced); each input is an example of the tool's
  `input_schema` (see `example_for`), streamed as `input_json_delta` pieces of up to
  PIECE_CHARS characters. Each piece counts as one output token; stop reason `tool_use`.
- Structured outputs: with `output_config.format` the text is an example of its schema,
  streamed in pieces of up to PIECE_CHARS characters (one output token each).
- Extended thinking: with `thinking: {"type": "enabled"}` the answer starts with a thinking
  block of THINKING (one output token per piece, streamed as `thinking_delta`s and a
  `signature_delta`).
- Images: an `image` block must have a `base64` source (media type, data) or a `url` source,
  like the real API demands.

A request that uses none of these gets `None` from `parse_extras` and the plain fast path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PIECE_CHARS = 8
THINKING = ("Let", " me", " think", ".")
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


class ExtrasError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Extras:
    tools: tuple[tuple[str, dict[str, Any]], ...]
    choice: str  # auto | none | any | tool
    forced_name: str | None
    schema: dict[str, Any] | None  # output_config.format.schema
    thinking: bool = False


@dataclass(frozen=True, slots=True)
class ToolUse:
    id: str
    name: str
    pieces: tuple[str, ...]

    @property
    def input_json(self) -> str:
        return "".join(self.pieces)


@dataclass(frozen=True, slots=True)
class ExtraOutput:
    text_pieces: tuple[str, ...] | None  # None: the usual words
    text_tokens: int
    tool_uses: tuple[ToolUse, ...]
    stop_reason: str
    thinking: tuple[str, ...] = ()

    @property
    def output_tokens(self) -> int:
        tools = sum(len(t.pieces) for t in self.tool_uses)
        return len(self.thinking) + self.text_tokens + tools


def check_image(block: dict[str, Any], where: str) -> None:
    source = block.get("source")
    if not isinstance(source, dict):
        source = {}
    kind = source.get("type")
    if kind == "url" and isinstance(source.get("url"), str):
        return
    base64_ok = source.get("media_type") in _IMAGE_TYPES and isinstance(source.get("data"), str)
    if kind == "base64" and base64_ok:
        return
    raise ExtrasError(f"{where}: an image needs a base64 source (media_type, data) or a url")


def parse_extras(body: dict[str, Any]) -> Extras | None:
    tools_raw, fmt = body.get("tools"), body.get("output_config")
    thinking = body.get("thinking")
    thinks = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    if not tools_raw and not fmt and not thinks:
        return None
    tools: list[tuple[str, dict[str, Any]]] = []
    for i, tool in enumerate(tools_raw or []):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise ExtrasError(f"tools.{i}.name: Field required")
        schema = tool.get("input_schema")
        tools.append((tool["name"], schema if isinstance(schema, dict) else {}))
    choice_raw = body.get("tool_choice") or {"type": "auto"}
    choice = choice_raw.get("type") if isinstance(choice_raw, dict) else None
    if choice not in ("auto", "none", "any", "tool"):
        raise ExtrasError("tool_choice.type: expected auto, none, any or tool")
    forced_name = choice_raw.get("name") if choice == "tool" else None
    if choice == "tool" and forced_name not in {name for name, _ in tools}:
        raise ExtrasError("tool_choice.name: must name one of the tools")
    schema = None
    if isinstance(fmt, dict) and isinstance(fmt.get("format"), dict):
        schema = fmt["format"].get("schema")
        if not isinstance(schema, dict):
            raise ExtrasError("output_config.format.schema: Field required")
    return Extras(tuple(tools), choice, forced_name, schema, thinks)


def plan_output(
    extras: Extras, tool_calls: int, text_tokens: int, max_tokens: int, ids: str
) -> ExtraOutput:
    """What to answer, given the plain answer's `text_tokens` (uncapped). Tool calls that
    would pass max_tokens are left out."""
    forced = extras.choice in ("any", "tool")
    thinking = THINKING[:max_tokens] if extras.thinking else ()
    max_tokens -= len(thinking)
    text_pieces = None
    if extras.schema is not None:
        text_pieces = split(json.dumps(example_for(extras.schema, extras.schema)))
        text_tokens = len(text_pieces)
    if forced:
        text_pieces, text_tokens = (), 0
    truncated = text_tokens >= max_tokens
    text_tokens = min(text_tokens, max_tokens)
    if text_pieces is not None:
        text_pieces = text_pieces[:text_tokens]
    wanted = 0 if extras.choice == "none" or not extras.tools else tool_calls
    if forced:
        wanted = max(wanted, 1)
    uses: list[ToolUse] = []
    budget = max_tokens - text_tokens
    for k in range(wanted):
        name, schema = _pick(extras, k)
        pieces = split(json.dumps(example_for(schema, schema)))
        if len(pieces) > budget:
            break
        budget -= len(pieces)
        uses.append(ToolUse(f"toolu_sim_{ids}_{k}", name, pieces))
    stop = "tool_use" if uses else "max_tokens" if truncated else "end_turn"
    return ExtraOutput(text_pieces, text_tokens, tuple(uses), stop, thinking)


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _texts(out: ExtraOutput, words: tuple[str, ...]) -> tuple[str, ...]:
    if out.text_pieces is not None:
        return out.text_pieces
    return tuple(words[i % len(words)] for i in range(out.text_tokens))


def content_events(out: ExtraOutput, words: tuple[str, ...]) -> list[bytes]:
    """The content-block events of a streamed answer (between message_start and
    message_delta)."""
    events: list[bytes] = []
    index = 0
    if out.thinking:
        events.append(_sse("content_block_start", _start(0, {"type": "thinking", "thinking": ""})))
        for piece in out.thinking:
            delta = {"type": "thinking_delta", "thinking": piece}
            events.append(_sse("content_block_delta", _delta(0, delta)))
        signature = {"type": "signature_delta", "signature": "c2ltdWxhdGVk"}
        events.append(_sse("content_block_delta", _delta(0, signature)))
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        index = 1
    texts = _texts(out, words)
    if texts:
        start = {"type": "text", "text": ""}
        events.append(_sse("content_block_start", _start(index, start)))
        for text in texts:
            delta = {"type": "text_delta", "text": text}
            events.append(_sse("content_block_delta", _delta(index, delta)))
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    for use in out.tool_uses:
        block = {"type": "tool_use", "id": use.id, "name": use.name, "input": {}}
        events.append(_sse("content_block_start", _start(index, block)))
        for piece in use.pieces:
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append(_sse("content_block_delta", _delta(index, delta)))
        events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    return events


def _start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def content_blocks(out: ExtraOutput, words: tuple[str, ...]) -> list[dict[str, Any]]:
    """The `content` of a non-streamed answer."""
    blocks: list[dict[str, Any]] = []
    if out.thinking:
        thought = "".join(out.thinking)
        blocks.append({"type": "thinking", "thinking": thought, "signature": "c2ltdWxhdGVk"})
    texts = _texts(out, words)
    if texts:
        blocks.append({"type": "text", "text": "".join(texts)})
    for use in out.tool_uses:
        tool_input = json.loads(use.input_json)
        blocks.append({"type": "tool_use", "id": use.id, "name": use.name, "input": tool_input})
    return blocks


def _pick(extras: Extras, k: int) -> tuple[str, dict[str, Any]]:
    if extras.forced_name is not None:
        return next(t for t in extras.tools if t[0] == extras.forced_name)
    return extras.tools[k % len(extras.tools)]


def split(text: str) -> tuple[str, ...]:
    return tuple(text[i : i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)) or ("",)


def example_for(schema: object, root: dict[str, Any], depth: int = 0) -> Any:
    """A deterministic instance of a JSON schema (the common keywords; `$ref` into `$defs`)."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if isinstance(schema.get("$ref"), str):
        name = schema["$ref"].rsplit("/", 1)[-1]
        defs = root.get("$defs") or root.get("definitions") or {}
        return example_for(defs.get(name), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combiner in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(combiner), list) and schema[combiner]:
            return example_for(schema[combiner][0], root, depth + 1)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required")
        names = required if isinstance(required, list) else list(props)
        return {n: example_for(props.get(n, {}), root, depth + 1) for n in names}
    if kind == "array":
        return [example_for(schema.get("items"), root, depth + 1)]
    simple: dict[str, Any] = {
        "string": "simulated",
        "integer": 1,
        "number": 1.5,
        "boolean": True,
        "null": None,
    }
    return simple.get(str(kind))
