"""OpenAI chat requests become the exact Anthropic Messages bodies documented in docs/anthropic.md.

Anthropic is faked at the HTTP layer; each test reads the JSON body that went upstream.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from symbiosis.exceptions import InvalidRequestError
from symbiosis.providers import AnthropicProvider
from symbiosis.wire import ChatCompletionRequest

URL = "https://api.anthropic.com/v1/messages"
REPLY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-test",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
HI = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ANTHROPIC_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


async def sent(httpx_mock: HTTPXMock, **request: Any) -> dict[str, Any]:
    """The JSON body the provider sent upstream for an OpenAI request built from ``request``."""
    httpx_mock.add_response(url=URL, method="POST", json=REPLY)
    chat = ChatCompletionRequest.model_validate({"model": "claude-test", **request})
    async with AnthropicProvider(api_key="sk-ant-test") as provider:
        await provider.chat(chat)
    return json.loads(httpx_mock.get_request().content)


async def refused(**request: Any) -> InvalidRequestError:
    """The 400 raised before anything is sent (pytest-httpx fails on any request)."""
    chat = ChatCompletionRequest.model_validate({"model": "claude-test", **request})
    async with AnthropicProvider(api_key="sk-ant-test") as provider:
        with pytest.raises(InvalidRequestError) as caught:
            await provider.chat(chat)
    assert caught.value.status_code == 400
    return caught.value


# -- messages ---------------------------------------------------------------------------


async def test_minimal_request_gets_default_max_tokens(httpx_mock: HTTPXMock) -> None:
    assert await sent(httpx_mock, messages=HI) == {
        "model": "claude-test",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hi"}],
    }


async def test_system_and_developer_messages_become_system_text_blocks(
    httpx_mock: HTTPXMock,
) -> None:
    body = await sent(
        httpx_mock,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Never mention cats."},
        ],
    )
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Answer in French."},
        {"type": "text", "text": "Never mention cats."},
    ]
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


async def test_consecutive_same_role_messages_are_merged(httpx_mock: HTTPXMock) -> None:
    body = await sent(
        httpx_mock,
        messages=[
            {"role": "user", "content": "First."},
            {"role": "user", "content": [{"type": "text", "text": "Second."}]},
            {"role": "assistant", "content": "A"},
            {"role": "assistant", "content": "B"},
            {"role": "user", "content": "Third."},
        ],
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
        },
        {"role": "user", "content": "Third."},
    ]


async def test_multi_turn_history_keeps_its_order(httpx_mock: HTTPXMock) -> None:
    body = await sent(
        httpx_mock,
        messages=[
            {"role": "user", "content": "Hello there."},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": "Explain LLMs."},
        ],
    )
    assert body["messages"] == [
        {"role": "user", "content": "Hello there."},
        {"role": "assistant", "content": "Hi, how can I help?"},
        {"role": "user", "content": "Explain LLMs."},
    ]


async def test_blank_text_and_names_are_dropped(httpx_mock: HTTPXMock) -> None:
    body = await sent(
        httpx_mock,
        messages=[
            {"role": "user", "content": "Hi", "name": "alice"},
            {"role": "assistant", "content": "  "},
            {"role": "user", "content": "Still there?"},
        ],
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Still there?"}],
        }
    ]


async def test_images_from_data_urls_and_web_urls(httpx_mock: HTTPXMock) -> None:
    body = await sent(
        httpx_mock,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                    },
                ],
            }
        ],
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare these."},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


async def test_inline_pdf_becomes_a_document_block(httpx_mock: HTTPXMock) -> None:
    part = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
    }
    body = await sent(httpx_mock, messages=[{"role": "user", "content": [part]}])
    assert body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
            "title": "a.pdf",
        }
    ]


async def test_cache_control_on_parts_and_tools_is_kept(httpx_mock: HTTPXMock) -> None:
    marker = {"type": "ephemeral"}
    body = await sent(
        httpx_mock,
        messages=[
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long.", "cache_control": marker}],
            },
            {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": marker}]},
        ],
        tools=[{**WEATHER_TOOL, "cache_control": marker}],
    )
    assert body["system"] == [{"type": "text", "text": "Long.", "cache_control": marker}]
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Hi", "cache_control": marker}
    ]
    assert body["tools"] == [{**ANTHROPIC_WEATHER_TOOL, "cache_control": marker}]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        (
            {"type": "image_url", "image_url": {"url": "ftp://example.com/x.png"}},
            "messages[0].content[1]",
        ),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}},
            "messages[0].content[1]",
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            "messages[0].content[1]",
        ),
        ({"type": "file", "file": {"file_id": "file-123"}}, "messages[0].content[1]"),
    ],
    ids=["ftp-url", "data-url-not-base64", "audio", "file-id"],
)
async def test_untranslatable_parts_are_refused(part: dict[str, Any], param: str) -> None:
    error = await refused(
        messages=[{"role": "user", "content": [{"type": "text", "text": "Look"}, part]}]
    )
    assert error.param == param


async def test_legacy_function_messages_are_refused() -> None:
    error = await refused(messages=[*HI, {"role": "function", "name": "f", "content": "42"}])
    assert error.param == "messages[1]"


# -- tools ------------------------------------------------------------------------------


async def test_tools_become_anthropic_tools(httpx_mock: HTTPXMock) -> None:
    bare = {"type": "function", "function": {"name": "now", "strict": True}}
    body = await sent(httpx_mock, messages=HI, tools=[WEATHER_TOOL, bare])
    assert body["tools"] == [
        ANTHROPIC_WEATHER_TOOL,
        {"name": "now", "input_schema": {"type": "object", "properties": {}}, "strict": True},
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        ("auto", True, {"type": "auto"}),
    ],
)
async def test_tool_choice_and_parallel_tool_calls(
    httpx_mock: HTTPXMock, tool_choice: Any, parallel: bool | None, expected: dict[str, Any]
) -> None:
    request: dict[str, Any] = {"messages": HI, "tools": [WEATHER_TOOL]}
    if tool_choice is not None:
        request["tool_choice"] = tool_choice
    if parallel is not None:
        request["parallel_tool_calls"] = parallel
    body = await sent(httpx_mock, **request)
    assert body["tool_choice"] == expected


async def test_tool_choice_without_tools(httpx_mock: HTTPXMock) -> None:
    assert "tool_choice" not in await sent(httpx_mock, messages=HI, tool_choice="auto")
    error = await refused(messages=HI, tool_choice="required")
    assert error.param == "tool_choice"


async def test_tool_calls_and_parallel_tool_results(httpx_mock: HTTPXMock) -> None:
    body = await sent(
        httpx_mock,
        messages=[
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {
                "role": "tool",
                "tool_call_id": "toolu_2",
                "content": [{"type": "text", "text": "9C"}],
            },
            {"role": "user", "content": "Which is warmer?"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "9C"}],
                },
                {"type": "text", "text": "Which is warmer?"},
            ],
        },
    ]


async def test_signed_thinking_blocks_go_back_before_tool_use(httpx_mock: HTTPXMock) -> None:
    thinking = {"type": "thinking", "thinking": "Need weather.", "signature": "sig=="}
    call = {
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    body = await sent(
        httpx_mock,
        messages=[
            *HI,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call],
                "thinking_blocks": [thinking],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        ],
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            thinking,
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
        ],
    }


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
async def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    call = {"id": "t", "type": "function", "function": {"name": "f", "arguments": arguments}}
    error = await refused(messages=[*HI, {"role": "assistant", "tool_calls": [call]}])
    assert error.param == "messages[1].tool_calls[0].function.arguments"


# -- parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 200}, 200),
        ({"max_tokens": 100, "max_completion_tokens": 200}, 200),
    ],
)
async def test_max_tokens(httpx_mock: HTTPXMock, limits: dict[str, int], expected: int) -> None:
    assert (await sent(httpx_mock, messages=HI, **limits))["max_tokens"] == expected


async def test_default_max_tokens_is_configurable(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, json=REPLY)
    chat = ChatCompletionRequest.model_validate({"model": "claude-test", "messages": HI})
    async with AnthropicProvider(api_key="k", default_max_tokens=512) as provider:
        await provider.chat(chat)
    assert json.loads(httpx_mock.get_request().content)["max_tokens"] == 512


async def test_sampling_stop_and_user(httpx_mock: HTTPXMock) -> None:
    body = await sent(
        httpx_mock, messages=HI, temperature=0.3, top_p=0.9, stop="END", user="user-42", top_k=5
    )
    assert body == {
        "model": "claude-test",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"},
    }


async def test_stop_list_and_temperature_one(httpx_mock: HTTPXMock) -> None:
    body = await sent(httpx_mock, messages=HI, stop=["a", "b"], temperature=1)
    assert (body["stop_sequences"], body["temperature"]) == (["a", "b"], 1)


async def test_temperature_above_one_is_refused() -> None:
    error = await refused(messages=HI, temperature=1.5)
    assert error.param == "temperature"


async def test_json_schema_becomes_structured_output(httpx_mock: HTTPXMock) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    body = await sent(
        httpx_mock,
        messages=HI,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "reply", "strict": True, "schema": schema},
        },
    )
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


@pytest.mark.parametrize("fmt", [{"type": "json_object"}, {"type": "text"}])
async def test_json_object_and_text_formats_send_nothing(
    httpx_mock: HTTPXMock, fmt: dict[str, Any]
) -> None:
    assert "output_config" not in await sent(httpx_mock, messages=HI, response_format=fmt)


async def test_json_schema_without_schema_is_refused() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x"}}
    error = await refused(messages=HI, response_format=fmt)
    assert error.param == "response_format"


@pytest.mark.parametrize(
    ("effort", "max_tokens", "budget"),
    [("minimal", 5120, 1024), ("low", 6144, 2048), ("medium", 12288, 8192), ("high", 20480, 16384)],
)
async def test_reasoning_effort_turns_on_thinking(
    httpx_mock: HTTPXMock, effort: str, max_tokens: int, budget: int
) -> None:
    body = await sent(httpx_mock, messages=HI, reasoning_effort=effort)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == max_tokens


async def test_thinking_budget_is_added_to_the_clients_limit(httpx_mock: HTTPXMock) -> None:
    body = await sent(httpx_mock, messages=HI, reasoning_effort="low", max_completion_tokens=500)
    assert (body["max_tokens"], body["thinking"]["budget_tokens"]) == (2548, 2048)


async def test_reasoning_effort_none_and_unknown(httpx_mock: HTTPXMock) -> None:
    assert "thinking" not in await sent(httpx_mock, messages=HI, reasoning_effort="none")
    error = await refused(messages=HI, reasoning_effort="extreme")
    assert error.param == "reasoning_effort"


async def test_parameters_without_equivalent_are_dropped_and_logged(
    httpx_mock: HTTPXMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="symbiosis.providers.anthropic")
    body = await sent(
        httpx_mock,
        messages=HI,
        frequency_penalty=0.5,
        presence_penalty=0.5,
        seed=7,
        logprobs=False,
        logit_bias={},
        n=1,
        metadata={"team": "a"},
        store=True,
        service_tier="auto",
        prediction={"type": "content", "content": "x"},
    )
    assert body == {
        "model": "claude-test",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    assert (
        "dropped n, logprobs, logit_bias, presence_penalty, frequency_penalty, seed, metadata, "
        "store, service_tier, prediction: no equivalent in the Messages API"
    ) in caplog.messages


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True, "top_logprobs": 3}, "logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"modalities": ["text", "audio"]}, "modalities"),
    ],
)
async def test_parameters_that_would_change_the_result_are_refused(
    params: dict[str, Any], param: str
) -> None:
    error = await refused(messages=HI, **params)
    assert error.param == param
