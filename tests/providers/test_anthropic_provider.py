"""AnthropicProvider against a fake Anthropic: connection facts, answers, streams and errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock, IteratorStream

from symbiosis.exceptions import (
    InvalidRequestError,
    RateLimitError,
    SymbiosisError,
    UpstreamError,
    UpstreamUnavailableError,
)
from symbiosis.providers import AnthropicProvider, create_provider, provider_class
from symbiosis.wire import ChatCompletionChunk, ChatCompletionRequest, EmbeddingsRequest

URL = "https://api.anthropic.com/v1/messages"
REQUEST = ChatCompletionRequest.model_validate(
    {"model": "claude-test", "messages": [{"role": "user", "content": "Hi"}]}
)


def message(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int) -> dict:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-2025",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def sse(*events: dict[str, Any]) -> list[bytes]:
    """Anthropic's wire framing: one ``event:``/``data:`` pair per event."""
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


START = {
    "type": "message_start",
    "message": {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-2025",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
            "output_tokens": 1,
        },
    },
}
STOP = {"type": "message_stop"}


def delta_event(stop_reason: str, output_tokens: int) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": output_tokens},
    }


async def chat(response: dict[str, Any], httpx_mock: HTTPXMock) -> dict[str, Any]:
    httpx_mock.add_response(url=URL, json=response)
    async with AnthropicProvider(api_key="sk-ant-test") as provider:
        completion = await provider.chat(REQUEST)
    return completion.model_dump(exclude={"created"})


async def stream(
    chunks: list[bytes], httpx_mock: HTTPXMock, request: ChatCompletionRequest = REQUEST
) -> list[dict[str, Any]]:
    httpx_mock.add_response(
        url=URL, stream=IteratorStream(chunks), headers={"content-type": "text/event-stream"}
    )
    async with AnthropicProvider(api_key="sk-ant-test") as provider:
        return [
            chunk.model_dump(exclude={"created"}, exclude_none=True)
            async for chunk in provider.chat_stream(request)
        ]


# -- connection facts -------------------------------------------------------------------


async def test_headers_and_url(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://proxy.test/anthropic/v1/messages", json=message([]))
    provider = AnthropicProvider(
        api_key="sk-ant-test",
        base_url="https://proxy.test/anthropic/",
        anthropic_version="2024-01-01",
        headers={"x-team": "blue"},
    )
    async with provider:
        await provider.chat(REQUEST)
    sent = httpx_mock.get_request()
    assert sent.method == "POST"
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2024-01-01"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["x-team"] == "blue"
    assert "authorization" not in sent.headers


async def test_default_version_header(httpx_mock: HTTPXMock) -> None:
    await chat(message([]), httpx_mock)
    assert httpx_mock.get_request().headers["anthropic-version"] == "2023-06-01"


def test_registered_under_its_type_name() -> None:
    assert provider_class("anthropic") is AnthropicProvider
    provider = create_provider("anthropic", {"api_key": "k", "timeout": 5}, name="claude")
    assert (provider.type, provider.name, provider.timeout) == ("anthropic", "claude", 5.0)


async def test_embeddings_are_not_offered() -> None:
    async with AnthropicProvider(api_key="k") as provider:
        with pytest.raises(InvalidRequestError):
            await provider.embeddings(EmbeddingsRequest(model="claude-test", input="x"))


# -- answers ----------------------------------------------------------------------------


async def test_text_answer_and_usage(httpx_mock: HTTPXMock) -> None:
    text = [{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}]
    response = message(text, cache_read_input_tokens=100, cache_creation_input_tokens=20)
    assert await chat(response, httpx_mock) == {
        "id": "msg_01",
        "object": "chat.completion",
        "model": "claude-test-2025",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello world",
                    "refusal": None,
                    "tool_calls": None,
                    "reasoning_content": None,
                    "thinking_blocks": None,
                },
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 130,
            "completion_tokens": 5,
            "total_tokens": 135,
            "prompt_tokens_details": {
                "cached_tokens": 100,
                "cache_write_tokens": 20,
                "audio_tokens": None,
            },
            "completion_tokens_details": None,
        },
        "system_fingerprint": None,
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        ("pause_turn", "stop"),
    ],
)
async def test_stop_reason_becomes_finish_reason(
    httpx_mock: HTTPXMock, stop_reason: str, finish_reason: str
) -> None:
    completion = await chat(message([{"type": "text", "text": "x"}], stop_reason), httpx_mock)
    assert completion["choices"][0]["finish_reason"] == finish_reason


async def test_tool_use_becomes_tool_calls(httpx_mock: HTTPXMock) -> None:
    content = [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
    ]
    completion = await chat(message(content, "tool_use"), httpx_mock)
    assert completion["choices"][0]["message"]["content"] == "Let me check."
    assert completion["choices"][0]["message"]["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {"id": "toolu_2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
    ]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"


async def test_thinking_is_kept_out_of_content(httpx_mock: HTTPXMock) -> None:
    thinking = {"type": "thinking", "thinking": "2+2 is 4.", "signature": "sig=="}
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    content = [thinking, redacted, {"type": "text", "text": "4"}, {"type": "server_tool_use"}]
    reply = (await chat(message(content), httpx_mock))["choices"][0]["message"]
    assert reply["content"] == "4"
    assert reply["reasoning_content"] == "2+2 is 4."
    assert reply["thinking_blocks"] == [thinking, redacted]


async def test_answer_without_text_has_null_content(httpx_mock: HTTPXMock) -> None:
    completion = await chat(message([], "max_tokens"), httpx_mock)
    assert completion["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    "response",
    [
        {"id": "msg_01", "content": []},
        message([{"type": "tool_use", "input": {}}], "tool_use"),
    ],
    ids=["missing-fields", "tool-use-without-id"],
)
async def test_malformed_answer_is_a_502(httpx_mock: HTTPXMock, response: dict) -> None:
    with pytest.raises(UpstreamError) as caught:
        await chat(response, httpx_mock)
    assert type(caught.value) is UpstreamError
    assert caught.value.status_code == 502


# -- errors -----------------------------------------------------------------------------


def anthropic_error(kind: str, text: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": text}}


async def json_error(provider: AnthropicProvider) -> SymbiosisError:
    with pytest.raises(SymbiosisError) as caught:
        await provider.chat(REQUEST)
    return caught.value


async def stream_error(provider: AnthropicProvider) -> SymbiosisError:
    with pytest.raises(SymbiosisError) as caught:
        async for _ in provider.chat_stream(REQUEST):
            pass
    return caught.value


@pytest.mark.parametrize("call", [json_error, stream_error], ids=["json", "stream"])
@pytest.mark.parametrize(
    ("status", "kind", "error_class", "our_status", "retry_after"),
    [
        (400, "invalid_request_error", InvalidRequestError, 400, None),
        (401, "authentication_error", UpstreamError, 502, None),
        (403, "permission_error", UpstreamError, 502, None),
        (429, "rate_limit_error", RateLimitError, 429, 7.0),
        (529, "overloaded_error", UpstreamUnavailableError, 503, 3.0),
        (500, "api_error", UpstreamError, 502, None),
    ],
)
async def test_http_errors_map_to_openai_shaped_errors(
    httpx_mock: HTTPXMock,
    call: Any,
    status: int,
    kind: str,
    error_class: type[SymbiosisError],
    our_status: int,
    retry_after: float | None,
) -> None:
    headers = {"retry-after": str(int(retry_after))} if retry_after else {}
    httpx_mock.add_response(
        url=URL, status_code=status, json=anthropic_error(kind, "upstream says no"), headers=headers
    )
    async with AnthropicProvider(api_key="k") as provider:
        error = await call(provider)
    assert type(error) is error_class
    assert error.status_code == our_status
    assert error.retry_after == retry_after
    assert "upstream says no" in error.message
    assert error.to_dict()["error"]["type"] == error_class.error_type


async def test_unreachable_upstream_is_a_503(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=URL)
    async with AnthropicProvider(api_key="k") as provider:
        error = await json_error(provider)
    assert (type(error), error.status_code) == (UpstreamUnavailableError, 503)


# -- streams ----------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    """An expected chunk as ``model_dump(exclude_none=True)`` shows it."""
    base = {"id": "msg_01", "object": "chat.completion.chunk", "model": "claude-test-2025"}
    if delta is None:
        return {**base, "choices": []}
    choice: dict[str, Any] = {"index": 0, "delta": delta}
    if finish:
        choice["finish_reason"] = finish
    return {**base, "choices": [choice]}


USAGE = {
    "prompt_tokens": 130,
    "completion_tokens": 12,
    "total_tokens": 142,
    "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
}


async def test_text_stream(httpx_mock: HTTPXMock) -> None:
    events = sse(
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
        {"type": "content_block_stop", "index": 0},
        delta_event("end_turn", 12),
        STOP,
    )
    # split one event across two network reads: chunks still come out whole
    events[3:4] = [events[3][:20], events[3][20:]]
    assert await stream(events, httpx_mock) == [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        {**chunk(), "usage": USAGE},
    ]
    body = json.loads(httpx_mock.get_request().content)
    assert body == {
        "model": "claude-test",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
    }


async def test_tool_call_stream(httpx_mock: HTTPXMock) -> None:
    tool = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    events = sse(
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Ok."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": tool},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {**tool, "id": "toolu_2", "name": "now"},
        },
        {"type": "content_block_stop", "index": 2},
        delta_event("tool_use", 12),
        STOP,
    )
    chunks = await stream(events, httpx_mock)
    assert chunks[1:-1] == [
        chunk({"content": "Ok."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "now", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({}, "tool_calls"),
    ]


async def test_server_tool_blocks_in_a_stream_are_skipped(httpx_mock: HTTPXMock) -> None:
    server_tool = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    query = {"type": "input_json_delta", "partial_json": '{"query": "x"}'}
    events = sse(
        START,
        {"type": "content_block_start", "index": 0, "content_block": server_tool},
        {"type": "content_block_delta", "index": 0, "delta": query},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta"}},
        delta_event("end_turn", 12),
        STOP,
    )
    chunks = await stream(events, httpx_mock)
    assert chunks[1:-1] == [chunk({}, "stop")]


async def test_thinking_stream(httpx_mock: HTTPXMock) -> None:
    request = REQUEST.model_copy(update={"reasoning_effort": "low"})
    events = sse(
        START,
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Hmm, "},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "4."},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "sig=="},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "4"}},
        {"type": "content_block_stop", "index": 1},
        delta_event("end_turn", 12),
        STOP,
    )
    chunks = await stream(events, httpx_mock, request)
    assert chunks[1:-2] == [
        chunk({"reasoning_content": "Hmm, "}),
        chunk({"reasoning_content": "4."}),
        chunk(
            {"thinking_blocks": [{"type": "thinking", "thinking": "Hmm, 4.", "signature": "sig=="}]}
        ),
        chunk({"content": "4"}),
    ]
    assert json.loads(httpx_mock.get_request().content)["thinking"] == {
        "type": "enabled",
        "budget_tokens": 2048,
    }


async def test_stream_always_ends_with_usage_chunk(httpx_mock: HTTPXMock) -> None:
    chunks = await stream(sse(START, STOP), httpx_mock)
    assert chunks[-2:] == [
        chunk({}, "stop"),
        {**chunk(), "usage": {**USAGE, "completion_tokens": 1, "total_tokens": 131}},
    ]
    assert ChatCompletionChunk.model_validate({**chunks[-1], "created": 0}).is_usage_only


async def test_error_event_mid_stream_raises_mapped_error(httpx_mock: HTTPXMock) -> None:
    events = sse(
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    httpx_mock.add_response(url=URL, stream=IteratorStream(events))
    async with AnthropicProvider(api_key="k") as provider:
        chunks = provider.chat_stream(REQUEST)
        first = await anext(chunks)  # chunks already sent stay sent
        with pytest.raises(UpstreamUnavailableError) as caught:
            await anext(chunks)
    assert first.choices[0].delta.role == "assistant"
    assert caught.value.status_code == 503
    assert "Overloaded" in caught.value.message


@pytest.mark.parametrize(
    ("kind", "error_class"),
    [
        ("invalid_request_error", InvalidRequestError),
        ("rate_limit_error", RateLimitError),
        ("api_error", UpstreamError),
    ],
)
async def test_other_error_events(
    httpx_mock: HTTPXMock, kind: str, error_class: type[SymbiosisError]
) -> None:
    events = sse(START, {"type": "error", "error": {"type": kind, "message": "nope"}})
    httpx_mock.add_response(url=URL, stream=IteratorStream(events))
    async with AnthropicProvider(api_key="k") as provider:
        error = await stream_error(provider)
    assert type(error) is error_class


@pytest.mark.parametrize(
    "events",
    [
        sse(
            START,
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        [b"event: message_start\ndata: {not json\n\n"],
    ],
    ids=["cut-before-message-stop", "garbage"],
)
async def test_broken_stream_is_a_502(httpx_mock: HTTPXMock, events: list[bytes]) -> None:
    httpx_mock.add_response(url=URL, stream=IteratorStream(events))
    async with AnthropicProvider(api_key="k") as provider:
        error = await stream_error(provider)
    assert (type(error), error.status_code) == (UpstreamError, 502)


async def groups_of(pieces: list[bytes], httpx_mock: HTTPXMock) -> tuple[list[list[str]], Any]:
    """The content of each group ``chat_stream_groups`` yields, and the error that ended it."""
    httpx_mock.add_response(url=URL, stream=IteratorStream(pieces))
    groups: list[list[str]] = []
    async with AnthropicProvider(api_key="k") as provider:
        try:
            async for group in provider.chat_stream_groups(REQUEST):
                groups.append(
                    [c.choices[0].delta.content or "" if c.choices else "-" for c in group]
                )
        except SymbiosisError as exc:
            return groups, exc
    return groups, None


TEXT_START = {
    "type": "content_block_start",
    "index": 0,
    "content_block": {"type": "text", "text": ""},
}


def text(piece: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": piece},
    }


async def test_stream_groups_follow_the_upstream_reads(httpx_mock: HTTPXMock) -> None:
    first = b"".join(sse(START, TEXT_START, text("Hel")))
    rest = b"".join(
        sse(
            text("lo"), {"type": "content_block_stop", "index": 0}, delta_event("end_turn", 2), STOP
        )
    )
    groups, error = await groups_of([first, rest], httpx_mock)
    assert error is None
    assert groups == [["", "Hel"], ["lo", "", "-"]]  # role chunk, text; text, finish, usage


async def test_stream_groups_hand_over_the_chunks_before_an_error(httpx_mock: HTTPXMock) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    groups, error = await groups_of(
        [b"".join(sse(START, TEXT_START, text("Hel"), overloaded))], httpx_mock
    )
    assert groups == [["", "Hel"]]
    assert isinstance(error, UpstreamUnavailableError)
