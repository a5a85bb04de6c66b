"""An OpenAI `chat.completions` request body, translated to an Anthropic Messages body.

Every parameter is either mapped, accepted because dropping it cannot change the answer
(`seed`, `store`, `metadata`, `service_tier`, `prediction`, `prompt_cache_key`,
`prompt_cache_retention`), or refused with a 400 naming it. Unknown parameters are refused,
like OpenAI does. Defaults: `max_tokens` is DEFAULT_MAX_TOKENS when the caller sets neither
`max_completion_tokens` nor `max_tokens` (hard-mode quotas reserve `max_tokens` times the output
price, so an unbounded default would reserve a fortune); with `reasoning_effort` the thinking
budget is added on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.inputs import MAX_USER_ID_LENGTH, text_problem, whole_number
from api.openai.capabilities import Capabilities, capabilities
from api.openai.errors import OpenAIRequestError, UnsupportedParameter
from api.openai.messages import convert_messages
from api.openai.tools import convert_response_format, convert_tool_choice, convert_tools

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
# Thinking budget per reasoning_effort ("none" turns thinking off).
THINKING_BUDGETS: dict[str, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
}

_IGNORED = frozenset(
    {
        "seed",
        "store",
        "metadata",
        "service_tier",
        "prediction",
        "prompt_cache_key",
        "prompt_cache_retention",
    }
)
_MAPPED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "user",
        "safety_identifier",
        "n",
        "logprobs",
        "top_logprobs",
        "modalities",
        "audio",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "functions",
        "function_call",
        "verbosity",
        "web_search_options",
    }
)

_MAX_TOKENS = 2**31 - 1  # as on /v1/messages
# Parameters that may be refused, and the ones that set tools or the output format: a plain
# request (model, messages, max_tokens, stream...) names none of them and skips their checks.
_REFUSABLE = frozenset(
    {
        "n",
        "logprobs",
        "top_logprobs",
        "modalities",
        "audio",
        "functions",
        "function_call",
        "verbosity",
        "web_search_options",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
    }
)
_TOOLS_OR_FORMAT = frozenset({"tools", "tool_choice", "parallel_tool_calls", "response_format"})
_SAMPLING = frozenset({"temperature", "top_p", "stop"})
_USER = frozenset({"user", "safety_identifier"})


@dataclass(frozen=True)
class ChatRequest:
    """The Anthropic body and what the response translation needs to know."""

    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    user: str | None
    max_tokens: int
    answer_tool: str | None  # a forced tool whose input is the answer (response_format)


def translate_request(body: dict[str, Any]) -> ChatRequest:
    """Raises OpenAIRequestError (a 400) for anything that cannot be honoured."""
    names = body.keys()
    unknown = sorted(names - _MAPPED - _IGNORED)
    if unknown:
        raise OpenAIRequestError(
            f"Unrecognized request argument supplied: {unknown[0]}", unknown[0], "unknown_parameter"
        )
    if not names.isdisjoint(_REFUSABLE):
        _refuse_unsupported(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise OpenAIRequestError("model: required (a non-empty string)", "model")
    caps = capabilities(model)
    system, messages = convert_messages(body.get("messages"))
    stream, include_usage = _stream_flags(body)
    out: dict[str, Any] = {"model": model, "messages": messages}
    if system:
        out["system"] = system
    answer_tool = None
    if not names.isdisjoint(_TOOLS_OR_FORMAT):
        answer_tool = _tools_and_format(body, caps, model, out)
    max_tokens = _max_tokens(body)
    thinking = _thinking(body, caps, model, answer_tool is not None, out)
    out["max_tokens"] = max_tokens or DEFAULT_MAX_TOKENS + (thinking or 0)
    if thinking is not None:
        budget = min(thinking, out["max_tokens"] - MIN_THINKING_BUDGET)
        if budget < MIN_THINKING_BUDGET:
            raise OpenAIRequestError(
                f"max_completion_tokens: must be at least {2 * MIN_THINKING_BUDGET} with "
                "reasoning_effort (it covers the reasoning and the answer)",
                "max_completion_tokens",
            )
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if not names.isdisjoint(_SAMPLING):
        _sampling(body, out, thinking is not None)
    user = None if names.isdisjoint(_USER) else _user(body)
    if user is not None:
        out["metadata"] = {"user_id": user}
    if stream:
        out["stream"] = True
    return ChatRequest(out, model, stream, include_usage, user, out["max_tokens"], answer_tool)


def _refuse_unsupported(body: dict[str, Any]) -> None:
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise OpenAIRequestError("n: must be a positive integer", "n")
    if isinstance(n, int) and n > 1:
        raise UnsupportedParameter("n", "only n=1 is supported (Claude returns one choice)")
    if body.get("logprobs") not in (None, False):
        raise UnsupportedParameter("logprobs", "Claude does not return log probabilities")
    if body.get("top_logprobs") is not None:
        raise UnsupportedParameter("top_logprobs", "Claude does not return log probabilities")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise UnsupportedParameter("modalities", "only ['text'] is supported (no audio)")
    for name in ("audio", "functions", "function_call", "verbosity", "web_search_options"):
        if body.get(name) is not None:
            why = (
                "is deprecated; use tools and tool_choice"
                if name.startswith("function")
                else "is not supported"
            )
            raise UnsupportedParameter(name, why)
    for name in ("frequency_penalty", "presence_penalty"):
        value = body.get(name)
        if value is not None and value != 0:
            raise UnsupportedParameter(name, "Claude has no sampling penalties (only 0 is allowed)")
    if body.get("logit_bias"):
        raise UnsupportedParameter("logit_bias", "Claude does not support logit_bias")


def _stream_flags(body: dict[str, Any]) -> tuple[bool, bool]:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise OpenAIRequestError("stream: must be a boolean", "stream")
    options = body.get("stream_options")
    if options is None:
        return bool(stream), False
    if not stream:
        raise OpenAIRequestError(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    if not isinstance(options, dict):
        raise OpenAIRequestError("stream_options: must be an object", "stream_options")
    include = options.get("include_usage")
    if include is not None and not isinstance(include, bool):
        raise OpenAIRequestError(
            "stream_options.include_usage: must be a boolean", "stream_options.include_usage"
        )
    return True, bool(include)


def _tools_and_format(
    body: dict[str, Any], caps: Capabilities, model: str, out: dict[str, Any]
) -> str | None:
    """Set tools, tool_choice and output_config; the name of an answer tool, if forced."""
    tools = convert_tools(body.get("tools"), caps, model)
    choice = convert_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"), tools)
    fmt = convert_response_format(body.get("response_format"), caps, model)
    if fmt.output_format is not None:
        out["output_config"] = {"format": fmt.output_format}
    if fmt.tool is not None:
        if tools:
            raise UnsupportedParameter(
                "response_format",
                f"on {model} a JSON response_format is a forced tool, so it cannot be combined "
                "with tools",
            )
        tools, choice = [fmt.tool], {"type": "tool", "name": fmt.tool["name"]}
    if tools:
        out["tools"] = tools
    if choice is not None:
        out["tool_choice"] = choice
    return fmt.tool["name"] if fmt.tool is not None else None


def _max_tokens(body: dict[str, Any]) -> int | None:
    values = {}
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        number = whole_number(value)
        if number is None or not 1 <= number <= _MAX_TOKENS:
            raise OpenAIRequestError(f"{name}: must be an integer from 1 to {_MAX_TOKENS}", name)
        values[name] = number
    if len(set(values.values())) > 1:
        raise OpenAIRequestError(
            "max_tokens and max_completion_tokens disagree; send one", "max_tokens"
        )
    return next(iter(values.values()), None)


def _thinking(
    body: dict[str, Any], caps: Capabilities, model: str, forced_tool: bool, out: dict[str, Any]
) -> int | None:
    """The thinking budget asked for by reasoning_effort, or None for no thinking."""
    effort = body.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    if effort not in THINKING_BUDGETS:
        raise OpenAIRequestError(
            f"reasoning_effort: must be one of none, {', '.join(THINKING_BUDGETS)}",
            "reasoning_effort",
        )
    if not caps.thinking:
        raise UnsupportedParameter("reasoning_effort", f"{model} has no extended thinking")
    if forced_tool:
        raise UnsupportedParameter(
            "reasoning_effort",
            f"cannot be combined with this response_format on {model} (a forced tool)",
        )
    choice = out.get("tool_choice")
    if isinstance(choice, dict) and choice["type"] in ("any", "tool"):
        raise UnsupportedParameter(
            "tool_choice", "with reasoning_effort only 'auto' or 'none' is possible on Claude"
        )
    return THINKING_BUDGETS[effort]


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise OpenAIRequestError(f"{name}: must be a number from {low} to {high}", name)
    return value


def _sampling(body: dict[str, Any], out: dict[str, Any], thinking: bool) -> None:
    temperature = _number(body, "temperature", 0, 2)
    if temperature is not None and temperature > 1:
        raise UnsupportedParameter("temperature", "Claude's temperature ranges from 0 to 1")
    top_p = _number(body, "top_p", 0, 1)
    if thinking and temperature is not None and temperature != 1:
        raise UnsupportedParameter("temperature", "with reasoning_effort it must be 1 (or unset)")
    if thinking and top_p is not None and top_p < 0.95:
        raise UnsupportedParameter("top_p", "with reasoning_effort it must be 0.95 to 1")
    if temperature is not None:
        out["temperature"] = temperature
    if top_p is not None:
        out["top_p"] = top_p
    stop = body.get("stop")
    if stop is None:
        return
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise OpenAIRequestError("stop: must be a non-empty string or an array of them", "stop")
    if stops:
        out["stop_sequences"] = stops


def _user(body: dict[str, Any]) -> str | None:
    found: dict[str, str] = {}
    for name in ("user", "safety_identifier"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise OpenAIRequestError(f"{name}: must be a string", name)
        problem = text_problem(value, MAX_USER_ID_LENGTH)
        if problem is not None:
            raise OpenAIRequestError(f"{name}: {problem}", name)
        found[name] = value
    if len(set(found.values())) > 1:
        raise OpenAIRequestError("user and safety_identifier disagree; send one", "user")
    return next(iter(found.values()), None)
