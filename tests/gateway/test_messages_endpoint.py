"""``POST /v1/messages`` driven by the official Anthropic SDK, with upstreams faked over HTTP.

Claude models pass through untouched; OpenAI-style models are translated both ways.
Each test checks the exact body sent upstream and what the SDK hands back.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from pytest_httpx import HTTPXMock, IteratorStream

from symbiosis.services.usage import MemoryUsageRecorder, UsageEvent
from symbiosis.settings import Settings

from .._db import static_keys
from ..conftest import TEST_KEY, InstallPlugin, MakeApp
from ._asgi import body_writes

ANTHROPIC_URL = "https://anthropic.test/v1/messages"
OPENAI_URL = "https://openai.test/v1/chat/completions"
CONFIG = """
[providers.claude]
type = "anthropic"
base_url = "https://anthropic.test"
api_key = "sk-ant-upstream"

[providers.oai]
type = "openai"
base_url = "https://openai.test/v1"
api_key = "sk-oai-upstream"

[[models]]
name = "claude"
provider = "claude"
model = "claude-upstream-1"

[[models]]
name = "gpt"
provider = "oai"
model = "gpt-upstream"

[[models]]
name = "mixed"
provider = "claude"
model = "claude-upstream-1"

[[models]]
name = "mixed"
provider = "oai"
model = "gpt-upstream"
"""
HI = [{"role": "user", "content": "Hi"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def usage() -> MemoryUsageRecorder:
    return MemoryUsageRecorder()


def sdk(app: Any) -> anthropic.AsyncAnthropic:
    """The official async SDK talking to ``app`` in-process (the SDK rides on httpx2)."""
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://gw")
    return anthropic.AsyncAnthropic(
        base_url="http://gw", api_key=TEST_KEY, max_retries=0, http_client=http
    )


@pytest.fixture
def client(make_app: MakeApp, usage: MemoryUsageRecorder) -> anthropic.AsyncAnthropic:
    return sdk(make_app(CONFIG, usage=usage))


def sent(httpx_mock: HTTPXMock) -> tuple[httpx.Request, dict[str, Any]]:
    request = httpx_mock.get_request()
    assert request is not None
    return request, json.loads(request.content)


def only_event(usage: MemoryUsageRecorder) -> UsageEvent:
    assert len(usage.events) == 1
    return usage.events[0]


# -- fake upstream payloads -------------------------------------------------------------


def claude_message(content: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-upstream-1-20250101",
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "output_tokens": 5,
        },
        **extra,
    }


def sse(*events: dict[str, Any]) -> list[bytes]:
    """Anthropic's framing: an ``event:`` line and a ``data:`` line per event."""
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


CLAUDE_STREAM = (
    {
        "type": "message_start",
        "message": {
            **claude_message([]),
            "stop_reason": None,
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
                "output_tokens": 1,
            },
        },
    },
    {"type": "ping"},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "something_new", "detail": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 7},
    },
    {"type": "message_stop"},
)


def completion(message: dict[str, Any], finish: str, **usage: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-upstream-2025",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59, **usage},
    }


def chunks(*deltas: dict[str, Any], finish: str, usage: dict[str, Any]) -> list[bytes]:
    base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": "g"}
    frames = [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        for delta in deltas
    ]
    frames.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    frames.append({**base, "choices": [], "usage": usage})
    return [f"data: {json.dumps(f)}\n\n".encode() for f in frames] + [b"data: [DONE]\n\n"]


# -- native pass-through ----------------------------------------------------------------

NATIVE_REQUEST: dict[str, Any] = {
    "model": "claude",
    "max_tokens": 256,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {
                    "type": "search_result",
                    "source": "https://weather.test/paris",
                    "title": "Paris",
                    "content": [{"type": "text", "text": "Sunny all week."}],
                },
            ],
        },
    ],
    "tools": [
        WEATHER_TOOL,
        {"type": "web_search_20250305", "name": "web_search"},
        {"type": "mcp_toolset", "mcp_server_name": "files"},
    ],
    "tool_choice": {"type": "auto"},
    "metadata": {"user_id": "u-1"},
    "stop_sequences": ["END"],
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "output_config": {"effort": "high"},
}
# Older clients still send sampling parameters; this SDK only through ``extra_body``.
NATIVE_EXTRAS = {"temperature": 0.5, "top_k": 40, "context_management": {"edits": []}}


async def test_native_message_is_passed_through(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock, usage: MemoryUsageRecorder
) -> None:
    upstream = claude_message(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}},
            {"type": "text", "text": "Sunny.", "citations": None},
        ],
        container=None,
        stop_details=None,
    )
    httpx_mock.add_response(url=ANTHROPIC_URL, json=upstream)
    raw = await client.messages.with_raw_response.create(
        **NATIVE_REQUEST,
        extra_body=NATIVE_EXTRAS,
        extra_headers={"anthropic-beta": "feature-a, feature-b"},
    )

    request, body = sent(httpx_mock)
    assert body == {**NATIVE_REQUEST, **NATIVE_EXTRAS, "model": "claude-upstream-1"}
    assert request.headers["x-api-key"] == "sk-ant-upstream"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["anthropic-beta"] == "feature-a,feature-b"
    assert TEST_KEY not in str(request.headers)
    assert json.loads(raw.http_response.content) == upstream  # every field, nulls included
    assert raw.headers["request-id"] == raw.headers["x-request-id"]
    message = await raw.parse()
    assert [b.type for b in message.content] == ["thinking", "server_tool_use", "text"]
    assert message.usage.cache_read_input_tokens == 100

    event = only_event(usage)
    assert (event.model, event.provider, event.upstream_model) == (
        "claude",
        "claude",
        "claude-upstream-1",
    )
    assert (event.input_tokens, event.output_tokens) == (130, 5)
    assert (event.cached_tokens, event.cache_write_tokens) == (100, 20)
    assert (event.status, event.stream, event.ttft_ms) == (200, False, None)


async def test_native_stream_is_relayed_event_by_event(
    make_app: MakeApp, httpx_mock: HTTPXMock, usage: MemoryUsageRecorder
) -> None:
    upstream = sse(*CLAUDE_STREAM)
    httpx_mock.add_response(
        url=ANTHROPIC_URL,
        stream=IteratorStream(upstream),
        headers={"content-type": "text/event-stream"},
    )
    app = make_app(CONFIG, usage=usage)
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://gw"
    ) as http:
        response = await http.post(
            "/v1/messages",
            json={"model": "claude", "max_tokens": 64, "messages": HI, "stream": True},
            headers={"x-api-key": TEST_KEY, "anthropic-version": "2023-06-01"},
        )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == b"".join(upstream)  # byte for byte
    _, body = sent(httpx_mock)
    assert body == {"model": "claude-upstream-1", "max_tokens": 64, "messages": HI, "stream": True}

    event = only_event(usage)
    assert (event.input_tokens, event.output_tokens, event.cached_tokens) == (130, 7, 100)
    assert (event.stream, event.status) == (True, 200)
    assert event.ttft_ms is not None
    assert event.ttft_ms <= event.latency_ms


async def test_native_stream_through_the_sdk_helpers(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url=ANTHROPIC_URL,
        stream=IteratorStream(sse(*CLAUDE_STREAM)),
        headers={"content-type": "text/event-stream"},
    )
    async with client.messages.stream(model="claude", max_tokens=64, messages=HI) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert texts == ["Hel", "lo"]
    assert final.content[0].text == "Hello"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (10, 7)


async def _native_stream_writes(
    make_app: MakeApp, httpx_mock: HTTPXMock, config: str
) -> list[bytes]:
    """What the gateway writes for a native stream whose events arrive in one read."""
    httpx_mock.add_response(
        url=ANTHROPIC_URL,
        content=b"".join(sse(*CLAUDE_STREAM)),
        headers={"content-type": "text/event-stream"},
    )
    request = {"model": "claude", "max_tokens": 64, "messages": HI, "stream": True}
    return await _messages_writes(make_app(config), request)


async def _messages_writes(app: Any, request: dict[str, Any]) -> list[bytes]:
    """The non-empty body writes the gateway makes for one ``/v1/messages`` call."""
    headers = [(b"x-api-key", TEST_KEY.encode())]
    writes = await body_writes(app, "/v1/messages", json.dumps(request).encode(), headers)
    return [m["body"] for m in writes if m["body"]]


async def test_native_events_that_arrive_together_leave_in_one_write(
    make_app: MakeApp, httpx_mock: HTTPXMock
) -> None:
    writes = await _native_stream_writes(make_app, httpx_mock, CONFIG)
    assert writes == [b"".join(sse(*CLAUDE_STREAM))]


EVENTS_ONLY_PLUGIN = """
from symbiosis.providers import AnthropicProvider

class Plugin(AnthropicProvider):
    # yields its events one by one, and cannot group them
    type = "claude_events_only"
    messages_stream_relay = None

    async def messages_stream(self, request, *, betas=()):
        body = request.wire_body(stream=True)
        async for event in self._post_events(self._url, body, self._headers):
            yield event
"""


async def test_plugin_that_streams_event_by_event_is_relayed_natively(
    make_app: MakeApp, httpx_mock: HTTPXMock, install_plugin: InstallPlugin
) -> None:
    install_plugin("claude_events_only", EVENTS_ONLY_PLUGIN)
    config = CONFIG.replace('type = "anthropic"', 'type = "claude_events_only"')
    writes = await _native_stream_writes(make_app, httpx_mock, config)
    assert writes == sse(*CLAUDE_STREAM)  # untranslated, one write per event
    _, body = sent(httpx_mock)
    assert body["model"] == "claude-upstream-1"


# -- translated to chat completions -----------------------------------------------------

IMAGE = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
TRANSLATED_REQUEST: dict[str, Any] = {
    "model": "gpt",
    "max_tokens": 300,
    "system": "Be brief.",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is here, and the weather?"},
                {"type": "image", "source": IMAGE},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "is_error": True,
                    "content": [{"type": "text", "text": "no data"}],
                },
                {"type": "text", "text": "And tomorrow?", "cache_control": {"type": "ephemeral"}},
            ],
        },
    ],
    "tools": [WEATHER_TOOL],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "metadata": {"user_id": "u-1"},
    "stop_sequences": ["END"],
    "output_config": {"effort": "max"},
    "cache_control": {"type": "ephemeral"},
}
TRANSLATED_EXTRAS = {"temperature": 0.2, "top_p": 0.9, "top_k": 5}
TRANSLATED_BODY: dict[str, Any] = {
    "model": "gpt-upstream",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is here, and the weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {
            "role": "tool",
            "tool_call_id": "toolu_2",
            "content": [{"type": "text", "text": "no data"}],
        },
        {"role": "user", "content": "And tomorrow?"},
    ],
    "max_completion_tokens": 300,
    "temperature": 0.2,
    "top_p": 0.9,
    "stop": ["END"],
    "user": "u-1",
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": WEATHER_TOOL["input_schema"],
            },
        }
    ],
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "reasoning_effort": "xhigh",
}


async def test_translated_message_with_tool_use(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock, usage: MemoryUsageRecorder
) -> None:
    answer = {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris", "day": 2}'},
            },
        ],
    }
    httpx_mock.add_response(
        url=OPENAI_URL,
        json=completion(answer, "tool_calls", prompt_tokens_details={"cached_tokens": 20}),
    )
    message = await client.messages.create(**TRANSLATED_REQUEST, extra_body=TRANSLATED_EXTRAS)

    request, body = sent(httpx_mock)
    assert body == TRANSLATED_BODY
    assert request.headers["authorization"] == "Bearer sk-oai-upstream"
    assert message.model_dump(exclude_none=True) == {
        "id": "chatcmpl-1",
        "type": "message",
        "role": "assistant",
        "model": "gpt-upstream-2025",
        "content": [
            {"type": "text", "text": "Let me look."},
            {
                "type": "tool_use",
                "id": "call_9",
                "name": "get_weather",
                "input": {"city": "Paris", "day": 2},
            },
        ],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 30,
            "cache_read_input_tokens": 20,
            "cache_creation_input_tokens": 0,
            "output_tokens": 9,
        },
    }
    event = only_event(usage)
    assert (event.provider, event.upstream_model) == ("oai", "gpt-upstream")
    assert (event.input_tokens, event.output_tokens, event.cached_tokens) == (50, 9, 20)


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")],
)
async def test_translated_stop_reasons(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock, finish: str, stop_reason: str
) -> None:
    httpx_mock.add_response(
        url=OPENAI_URL, json=completion({"role": "assistant", "content": "x"}, finish)
    )
    message = await client.messages.create(model="gpt", max_tokens=5, messages=HI)
    assert message.stop_reason == stop_reason


async def test_translated_structured_output_and_thinking(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    answer = {"role": "assistant", "content": '{"a": 1}', "reasoning_content": "think"}
    httpx_mock.add_response(url=OPENAI_URL, json=completion(answer, "stop"))
    message = await client.messages.create(
        model="gpt",
        max_tokens=50,
        messages=HI,
        thinking={"type": "enabled", "budget_tokens": 1024},
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    _, body = sent(httpx_mock)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": True},
    }
    assert "thinking" not in body
    assert "reasoning_effort" not in body
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "think"


async def test_translated_stream_with_parallel_tool_calls(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock, usage: MemoryUsageRecorder
) -> None:
    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, **fields}]}

    upstream = chunks(
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        call(0, id="call_a", type="function", function={"name": "get_weather", "arguments": ""}),
        call(0, function={"arguments": '{"ci'}),
        call(0, function={"arguments": 'ty": "Paris"}'}),
        call(1, id="call_b", type="function", function={"name": "get_weather", "arguments": "{}"}),
        finish="tool_calls",
        usage={"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
    )
    httpx_mock.add_response(
        url=OPENAI_URL,
        stream=IteratorStream(upstream),
        headers={"content-type": "text/event-stream"},
    )
    stream = await client.messages.create(
        model="gpt", max_tokens=100, messages=HI, tools=[WEATHER_TOOL], stream=True
    )
    events = [event.model_dump(exclude_none=True) async for event in stream]

    _, body = sent(httpx_mock)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert [e["type"] for e in events] == [
        "message_start",
        *["content_block_start", "content_block_delta", "content_block_delta"],
        "content_block_stop",
        *["content_block_start", "content_block_delta", "content_block_delta"],
        "content_block_stop",
        *["content_block_start", "content_block_delta"],
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0]["message"]["id"] == "chatcmpl-2"
    assert events[5]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "get_weather",
        "input": {},
    }
    assert [e["delta"] for e in events[6:8]] == [
        {"type": "input_json_delta", "partial_json": '{"ci'},
        {"type": "input_json_delta", "partial_json": 'ty": "Paris"}'},
    ]
    assert events[10]["index"] == 2
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"] == {
        "input_tokens": 40,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 12,
    }
    event = only_event(usage)
    assert (event.input_tokens, event.output_tokens, event.stream) == (40, 12, True)
    assert event.ttft_ms is not None


async def test_translated_stream_through_the_sdk_helpers(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock
) -> None:
    upstream = chunks(
        {"role": "assistant", "content": "Sun"},
        {"content": "ny"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                }
            ]
        },
        finish="tool_calls",
        usage={
            "prompt_tokens": 40,
            "completion_tokens": 12,
            "total_tokens": 52,
            "prompt_tokens_details": {"cached_tokens": 32},
        },
    )
    httpx_mock.add_response(
        url=OPENAI_URL,
        stream=IteratorStream(upstream),
        headers={"content-type": "text/event-stream"},
    )
    async with client.messages.stream(
        model="gpt", max_tokens=100, messages=HI, tools=[WEATHER_TOOL]
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].text == "Sunny"
    assert final.content[1].type == "tool_use"
    assert final.content[1].input == {"city": "Rome"}
    assert final.stop_reason == "tool_use"
    assert final.usage.input_tokens == 8
    assert final.usage.cache_read_input_tokens == 32


async def test_group_falls_back_from_native_to_translated(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock, usage: MemoryUsageRecorder
) -> None:
    httpx_mock.add_response(
        url=ANTHROPIC_URL,
        status_code=529,
        json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    httpx_mock.add_response(
        url=OPENAI_URL, json=completion({"role": "assistant", "content": "fine"}, "stop")
    )
    message = await client.messages.create(model="mixed", max_tokens=5, messages=HI)
    assert message.content[0].text == "fine"
    assert only_event(usage).provider == "oai"


# -- refused translations ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "url", "url": "https://x.test/a.pdf"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "image", "source": IMAGE}],
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].content[0]",
        ),
        ({"mcp_servers": [{"type": "url", "url": "https://mcp.test", "name": "m"}]}, "mcp_servers"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "later"}}, "tool_choice"),
        (
            {"messages": [*HI, {"role": "assistant", "content": "The answer is"}]},
            "messages[1]",
        ),
    ],
)
async def test_what_cannot_be_translated_is_a_400(
    make_app: MakeApp, change: dict[str, Any], param: str
) -> None:
    app = make_app(CONFIG)
    body = {"model": "gpt", "max_tokens": 5, "messages": HI, **change}
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://gw"
    ) as http:
        response = await http.post("/v1/messages", json=body, headers={"x-api-key": TEST_KEY})
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["error"]["message"].startswith(param)


# -- errors -----------------------------------------------------------------------------


async def test_unknown_model_is_not_found(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        await client.messages.create(model="nope", max_tokens=5, messages=HI)
    assert caught.value.body["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(
    ("change", "param"), [({"max_tokens": 0}, "max_tokens"), ({"messages": []}, "messages")]
)
async def test_invalid_body_is_bad_request(
    client: anthropic.AsyncAnthropic, change: dict[str, Any], param: str
) -> None:
    request = {"model": "claude", "max_tokens": 5, "messages": HI, **change}
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(**request)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert param in caught.value.body["error"]["message"]


async def test_temperature_above_one_is_bad_request(client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(
            model="gpt", max_tokens=5, messages=HI, extra_body={"temperature": 1.5}
        )
    assert "temperature" in caught.value.body["error"]["message"]


async def test_model_outside_the_key_is_permission_denied(make_app: MakeApp) -> None:
    client = sdk(make_app(CONFIG, keys=static_keys([TEST_KEY], models=["gpt"])))
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        await client.messages.create(model="claude", max_tokens=5, messages=HI)
    assert caught.value.body["error"]["type"] == "permission_error"


async def test_unknown_key_is_authentication_error(make_app: MakeApp) -> None:
    client = sdk(make_app(CONFIG)).with_options(api_key="sk-sym-not-a-key")
    with pytest.raises(anthropic.AuthenticationError):
        await client.messages.create(model="claude", max_tokens=5, messages=HI)


async def test_body_over_the_limit_is_too_large(make_app: MakeApp) -> None:
    client = sdk(make_app(CONFIG, settings=Settings(max_request_bytes=1024)))
    messages = [{"role": "user", "content": "x" * 2000}]
    with pytest.raises(anthropic.ContentTooLargeError) as caught:
        await client.messages.create(model="claude", max_tokens=5, messages=messages)
    assert caught.value.body["error"]["type"] == "request_too_large"


@pytest.mark.parametrize(
    ("upstream", "exception", "status", "kind"),
    [
        (
            {"status_code": 429, "headers": {"retry-after": "7"}},
            anthropic.RateLimitError,
            429,
            "rate_limit_error",
        ),
        (
            {"status_code": 529, "headers": {"retry-after": "3"}},
            anthropic.ServiceUnavailableError,
            503,
            "overloaded_error",
        ),
        ({"status_code": 400}, anthropic.BadRequestError, 400, "invalid_request_error"),
        ({"status_code": 401}, anthropic.InternalServerError, 502, "api_error"),
        ({"status_code": 500}, anthropic.InternalServerError, 502, "api_error"),
    ],
)
async def test_upstream_failures_reach_the_sdk(
    client: anthropic.AsyncAnthropic,
    httpx_mock: HTTPXMock,
    usage: MemoryUsageRecorder,
    upstream: dict[str, Any],
    exception: type[anthropic.APIStatusError],
    status: int,
    kind: str,
) -> None:
    error = {"type": "error", "error": {"type": "some_error", "message": "upstream says no"}}
    httpx_mock.add_response(url=ANTHROPIC_URL, json=error, **upstream)
    with pytest.raises(exception) as caught:
        await client.messages.create(model="claude", max_tokens=5, messages=HI)
    assert caught.value.status_code == status
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == kind
    retry_after = upstream.get("headers", {}).get("retry-after")
    assert caught.value.response.headers.get("retry-after") == retry_after
    event = only_event(usage)
    assert (event.status, event.provider) == (status, None)


async def test_upstream_timeout_is_timeout_error(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=OPENAI_URL)
    with pytest.raises(anthropic.GatewayTimeoutError) as caught:
        await client.messages.create(model="gpt", max_tokens=5, messages=HI)
    assert caught.value.body["error"]["type"] == "timeout_error"


async def test_unexpected_failure_is_an_anthropic_500(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(RuntimeError("a bug somewhere below"), url=ANTHROPIC_URL)
    with pytest.raises(anthropic.InternalServerError) as caught:
        await client.messages.create(model="claude", max_tokens=5, messages=HI)
    assert caught.value.status_code == 500
    assert caught.value.body["error"]["type"] == "api_error"
    assert "a bug somewhere below" not in str(caught.value.body)


async def consume(stream: Any, received: list[str]) -> None:
    async for event in stream:
        received.append(event.type)


async def test_native_error_event_mid_stream(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock, usage: MemoryUsageRecorder
) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    httpx_mock.add_response(
        url=ANTHROPIC_URL,
        stream=IteratorStream(sse(*CLAUDE_STREAM[:4], overloaded)),
        headers={"content-type": "text/event-stream"},
    )
    stream = await client.messages.create(model="claude", max_tokens=5, messages=HI, stream=True)
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await consume(stream, received)
    assert received == ["message_start", "content_block_start", "content_block_delta"]
    assert caught.value.body["error"]["type"] == "overloaded_error"
    event = only_event(usage)
    assert (event.status, event.input_tokens) == (503, 130)


async def test_translated_stream_broken_mid_way(
    client: anthropic.AsyncAnthropic, httpx_mock: HTTPXMock, usage: MemoryUsageRecorder
) -> None:
    first = chunks({"role": "assistant", "content": "partial"}, finish="stop", usage={})[0]
    httpx_mock.add_response(
        url=OPENAI_URL, stream=_BrokenStream(first), headers={"content-type": "text/event-stream"}
    )
    stream = await client.messages.create(model="gpt", max_tokens=5, messages=HI, stream=True)
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await consume(stream, received)
    assert received == ["message_start", "content_block_start", "content_block_delta"]
    assert caught.value.body["error"]["type"] == "api_error"
    assert only_event(usage).status == 502


class _BrokenStream(httpx.AsyncByteStream):
    """An upstream body that sends one chunk, then the connection breaks."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    async def __aiter__(self):
        yield self.first
        raise httpx.ReadError("connection reset by peer")


# -- translated streams: one write per upstream read -------------------------------------


def _events(body: bytes) -> list[str]:
    return [line[7:] for line in body.decode().split("\n") if line.startswith("event: ")]


async def test_translated_events_that_arrive_together_leave_together(
    make_app: MakeApp, httpx_mock: HTTPXMock
) -> None:
    usage = {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
    upstream = chunks(
        {"role": "assistant", "content": "Sun"}, {"content": "ny"}, finish="stop", usage=usage
    )
    httpx_mock.add_response(url=OPENAI_URL, content=b"".join(upstream))
    request = {"model": "gpt", "max_tokens": 64, "messages": HI, "stream": True}
    bodies = await _messages_writes(make_app(CONFIG), request)
    assert len(bodies) == 2  # the upstream's one read, then the closing events
    assert _events(bodies[0]) == ["message_start", "content_block_start", "content_block_delta",
                                  "content_block_delta"]  # fmt: skip
    assert _events(bodies[1]) == ["content_block_stop", "message_delta", "message_stop"]


@pytest.mark.parametrize("split", [None, 3], ids=["one read", "two reads"])
async def test_chat_stream_from_claude_is_written_per_upstream_read(
    make_app: MakeApp, httpx_mock: HTTPXMock, split: int | None
) -> None:
    events = sse(*CLAUDE_STREAM)
    reads = (
        [b"".join(events)]
        if split is None
        else [b"".join(events[:split]), b"".join(events[split:])]
    )
    httpx_mock.add_response(url=ANTHROPIC_URL, stream=IteratorStream(reads))
    request = {"model": "claude", "messages": HI, "stream": True}
    writes = await body_writes(
        make_app(CONFIG), "/v1/chat/completions", json.dumps(request).encode(),
        [(b"authorization", f"Bearer {TEST_KEY}".encode())],
    )  # fmt: skip
    bodies = [m["body"] for m in writes if m["body"]]
    assert len(bodies) == len(reads)
    data = [
        line[6:]
        for body in bodies
        for line in body.decode().split("\n")
        if line.startswith("data: ")
    ]
    assert data[-1] == "[DONE]"
    texts = [json.loads(d)["choices"][0]["delta"].get("content") for d in data[:-1]]
    assert texts == ["", "Hel", "lo", None]  # the role chunk, the text, the finish chunk
