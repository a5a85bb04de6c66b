"""OpenAI chat.completions bodies translated to Anthropic Messages bodies, and the refusals."""

from __future__ import annotations

from typing import Any

import pytest

from api.openai.errors import OpenAIRequestError
from api.openai.jsonbody import parse_strict_object
from api.openai.request import DEFAULT_MAX_TOKENS, translate_request

MODEL = "claude-sonnet-4-6"
LEGACY = "claude-sonnet-4-20250514"  # no structured outputs
HI = [{"role": "user", "content": "Hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def tr(**body: Any) -> dict[str, Any]:
    return translate_request({"model": MODEL, "messages": HI, **body}).body


def refused(**body: Any) -> OpenAIRequestError:
    with pytest.raises(OpenAIRequestError) as caught:
        translate_request({"model": MODEL, "messages": HI, **body})
    return caught.value


def test_minimal_request_gets_the_default_max_tokens_and_no_extras() -> None:
    assert tr() == {
        "model": MODEL,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "max_tokens": DEFAULT_MAX_TOKENS,
    }


def test_system_and_developer_messages_become_the_system_prompt_in_order() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
    ]
    body = tr(messages=messages)
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use French."},
    ]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]


def test_tool_round_trip_merges_tool_results_into_one_user_turn() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "rain"}]},
        {"role": "user", "content": "Thanks"},
    ]
    body = tr(messages=messages, tools=[WEATHER])
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "rain"}],
                },
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert body["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", True, {"type": "any"}),
    ],
)
def test_tool_choice_and_parallel_tool_calls(
    choice: Any, parallel: bool | None, expected: dict[str, Any]
) -> None:
    extra = {} if parallel is None else {"parallel_tool_calls": parallel}
    assert tr(tools=[WEATHER], tool_choice=choice, **extra)["tool_choice"] == expected


def test_empty_messages_and_a_toolless_none_choice_are_not_sent() -> None:
    messages = [*HI, {"role": "assistant", "content": ""}, {"role": "user", "content": "Again"}]
    body = tr(messages=messages, tool_choice="none", parallel_tool_calls=False)
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert [b["text"] for b in body["messages"][0]["content"]] == ["Hi", "Again"]
    assert "tool_choice" not in body and "tools" not in body


def test_images_from_data_urls_and_https_urls() -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
    ]
    blocks = tr(messages=[{"role": "user", "content": content}])["messages"][0]["content"]
    assert blocks[1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    "url", ["http://example.com/a.png", "data:image/bmp;base64,AAAA", "data:image/png,AAAA"]
)
def test_images_that_cannot_be_sent_are_refused(url: str) -> None:
    content = [{"type": "image_url", "image_url": {"url": url}}]
    error = refused(messages=[{"role": "user", "content": content}])
    assert error.param == "messages[0].content[0].image_url.url"


def test_sampling_stop_user_and_token_limits() -> None:
    body = tr(
        temperature=0.2,
        top_p=0.9,
        stop="END",
        user="alice",
        max_completion_tokens=100,
    )
    assert body["temperature"] == 0.2
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "alice"}
    assert body["max_tokens"] == 100
    assert tr(stop=["a", "b"], max_tokens=7)["stop_sequences"] == ["a", "b"]
    assert tr(max_tokens=7)["max_tokens"] == 7


def test_stream_and_include_usage() -> None:
    req = translate_request(
        {
            "model": MODEL,
            "messages": HI,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    assert req.stream and req.include_usage and req.body["stream"] is True
    assert not translate_request({"model": MODEL, "messages": HI}).stream


def test_reasoning_effort_becomes_a_thinking_budget_inside_max_tokens() -> None:
    body = tr(reasoning_effort="low")
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS + 2048
    # an explicit limit covers reasoning and answer, so the budget shrinks to fit
    body = tr(reasoning_effort="high", max_completion_tokens=5000)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 5000 - 1024}
    assert body["max_tokens"] == 5000
    assert "thinking" not in tr(reasoning_effort="none")


def test_json_schema_uses_structured_outputs_where_the_model_has_them() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema}}
    req = translate_request({"model": MODEL, "messages": HI, "response_format": fmt})
    assert req.body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert req.answer_tool is None and "tools" not in req.body
    legacy = translate_request({"model": LEGACY, "messages": HI, "response_format": fmt})
    assert legacy.answer_tool == "thing"
    assert legacy.body["tools"][0]["input_schema"] == schema
    assert legacy.body["tool_choice"] == {"type": "tool", "name": "thing"}


def test_json_object_is_a_forced_free_form_object_tool() -> None:
    req = translate_request(
        {"model": MODEL, "messages": HI, "response_format": {"type": "json_object"}}
    )
    assert req.answer_tool == "json_object"
    assert req.body["tools"][0]["input_schema"] == {"type": "object"}
    assert req.body["tool_choice"] == {"type": "tool", "name": "json_object"}
    assert "tools" not in tr(response_format={"type": "text"})


def test_accepted_parameters_that_cannot_change_the_answer_are_not_sent() -> None:
    body = tr(seed=1, store=False, metadata={"a": "b"}, service_tier="auto", n=1, logprobs=False)
    assert set(body) == {"model", "messages", "max_tokens"}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": -1}, "frequency_penalty"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"temperature": 1.5}, "temperature"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"verbosity": "low"}, "verbosity"),
        ({"frobnicate": True}, "frobnicate"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"max_tokens": 10, "max_completion_tokens": 20}, "max_tokens"),
        ({"reasoning_effort": "high", "temperature": 0.5}, "temperature"),
        ({"reasoning_effort": "low", "max_completion_tokens": 1500}, "max_completion_tokens"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"stop": [""]}, "stop"),
        ({"user": ""}, "user"),
    ],
)
def test_what_cannot_be_honoured_is_refused_naming_the_parameter(
    params: dict[str, Any], param: str
) -> None:
    assert refused(**params).param == param


def test_model_specific_refusals() -> None:
    with pytest.raises(OpenAIRequestError) as caught:
        translate_request(
            {"model": "claude-3-5-haiku-20241022", "messages": HI, "reasoning_effort": "low"}
        )
    assert caught.value.param == "reasoning_effort"
    strict_tool = {**WEATHER, "function": {**WEATHER["function"], "strict": True}}  # type: ignore[dict-item]
    with pytest.raises(OpenAIRequestError) as caught:
        translate_request({"model": LEGACY, "messages": HI, "tools": [strict_tool]})
    assert caught.value.param == "tools[0].function.strict"
    assert tr(tools=[strict_tool])["tools"][0]["strict"] is True
    with pytest.raises(OpenAIRequestError) as caught:
        translate_request(
            {
                "model": LEGACY,
                "messages": HI,
                "tools": [WEATHER],
                "response_format": {"type": "json_object"},
            }
        )
    assert caught.value.param == "response_format"


def test_messages_that_cannot_be_translated_are_refused() -> None:
    audio = [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]
    assert refused(messages=[{"role": "user", "content": audio}]).param == "messages[0].content[0]"
    bad_args = {
        "role": "assistant",
        "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
        ],
    }
    error = refused(messages=[*HI, bad_args])
    assert error.param == "messages[1].tool_calls[0].function.arguments"
    assert refused(messages=[{"role": "function", "name": "f", "content": "x"}]).param
    assert refused(messages=[{"role": "system", "content": "only a system prompt"}])


def test_duplicate_json_keys_are_refused_at_any_depth() -> None:
    with pytest.raises(OpenAIRequestError, match="duplicate key 'model'"):
        parse_strict_object(b'{"model": "a", "model": "b"}')
    with pytest.raises(OpenAIRequestError):
        parse_strict_object(b'{"messages": [{"role": "user", "role": "system"}]}')
    assert parse_strict_object(b'{"a": {"b": 1}, "b": 2}') == {"a": {"b": 1}, "b": 2}
