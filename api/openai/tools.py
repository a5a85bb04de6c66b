"""`tools`, `tool_choice`, `parallel_tool_calls` and `response_format`, translated.

`response_format`:
- `json_schema` uses Anthropic's structured outputs (`output_config.format`) on models that
  have them: the answer is ordinary text constrained to the schema, so it streams as content
  and combines with tools and thinking exactly as on OpenAI. On older models it becomes a
  forced tool whose input schema is the schema; the tool's input is returned as the message
  content (finish_reason `stop`).
- `json_object` has no Anthropic counterpart (structured outputs need a closed schema), so it
  is always a forced tool with the free-form schema `{"type": "object"}`: the answer is a JSON
  object by construction.
A forced tool cannot be combined with the caller's own tools or with reasoning: refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from api.openai.capabilities import Capabilities
from api.openai.errors import OpenAIRequestError, UnsupportedParameter

Block = dict[str, Any]
JSON_OBJECT_TOOL = "json_object"
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def convert_tools(raw: object, caps: Capabilities, model: str) -> list[Block]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise OpenAIRequestError("tools: must be an array", "tools")
    return [_tool(tool, f"tools[{i}]", caps, model) for i, tool in enumerate(raw)]


def _tool(tool: object, where: str, caps: Capabilities, model: str) -> Block:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        raise UnsupportedParameter(f"{where}.type", "only 'function' tools are supported")
    function = tool.get("function")
    if not isinstance(function, dict):
        raise OpenAIRequestError(f"{where}.function: required", f"{where}.function")
    name = function.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise OpenAIRequestError(
            f"{where}.function.name: must match ^[a-zA-Z0-9_-]{{1,64}}$", f"{where}.function.name"
        )
    out: Block = {"name": name, "input_schema": function.get("parameters") or _EMPTY_SCHEMA}
    if not isinstance(out["input_schema"], dict):
        raise OpenAIRequestError(
            f"{where}.function.parameters: must be an object", f"{where}.function.parameters"
        )
    description = function.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise OpenAIRequestError(
                f"{where}.function.description: must be a string", f"{where}.function.description"
            )
        out["description"] = description
    if function.get("strict") is True:
        if not caps.structured_outputs:
            raise UnsupportedParameter(
                f"{where}.function.strict", f"{model} has no strict tool use; remove 'strict'"
            )
        out["strict"] = True
    return out


def convert_tool_choice(raw: object, parallel: object, tools: list[Block]) -> Block | None:
    """Anthropic's `tool_choice`, or None to leave it out."""
    if parallel is not None and not isinstance(parallel, bool):
        raise OpenAIRequestError("parallel_tool_calls: must be a boolean", "parallel_tool_calls")
    if raw is None:
        choice: Block | None = {"type": "auto"} if tools else None
    elif raw == "auto":
        choice = {"type": "auto"}
    elif raw == "none":
        choice = {"type": "none"}
    elif raw == "required":
        choice = {"type": "any"}
    elif isinstance(raw, dict) and raw.get("type") == "function":
        function = raw.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or name not in {t["name"] for t in tools}:
            raise OpenAIRequestError(
                "tool_choice.function.name: must name one of the tools", "tool_choice"
            )
        choice = {"type": "tool", "name": name}
    else:
        raise UnsupportedParameter(
            "tool_choice", "must be 'auto', 'none', 'required' or a function choice"
        )
    if choice is not None and not tools:
        if choice["type"] != "none":
            raise OpenAIRequestError(
                "tool_choice: is only allowed when tools are given", "tool_choice"
            )
        return None  # no tools, so "none" changes nothing (and Anthropic wants tools with it)
    if choice is not None and parallel is False and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True
    return choice


@dataclass(frozen=True)
class OutputFormat:
    """How `response_format` is honoured: `output_format` for `output_config.format`, or
    `tool` for a forced tool whose input is the answer."""

    output_format: Block | None = None
    tool: Block | None = None


def convert_response_format(raw: object, caps: Capabilities, model: str) -> OutputFormat:
    if raw is None:
        return OutputFormat()
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return OutputFormat()
    if kind == "json_object":
        return OutputFormat(
            tool={
                "name": JSON_OBJECT_TOOL,
                "description": "Give your whole answer as this tool's input: a JSON object.",
                "input_schema": {"type": "object"},
            }
        )
    if kind != "json_schema":
        raise OpenAIRequestError(
            "response_format.type: must be 'text', 'json_object' or 'json_schema'",
            "response_format.type",
        )
    assert isinstance(raw, dict)
    spec = raw.get("json_schema")
    if not isinstance(spec, dict):
        raise OpenAIRequestError(
            "response_format.json_schema: required", "response_format.json_schema"
        )
    schema = spec.get("schema") or _EMPTY_SCHEMA
    if not isinstance(schema, dict):
        raise OpenAIRequestError(
            "response_format.json_schema.schema: must be an object",
            "response_format.json_schema.schema",
        )
    if caps.structured_outputs:
        return OutputFormat(output_format={"type": "json_schema", "schema": schema})
    name = spec.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise OpenAIRequestError(
            "response_format.json_schema.name: must match ^[a-zA-Z0-9_-]{1,64}$",
            "response_format.json_schema.name",
        )
    description = spec.get("description")
    return OutputFormat(
        tool={
            "name": name,
            "description": description
            if isinstance(description, str)
            else "Give your whole answer as this tool's input.",
            "input_schema": schema,
        }
    )
