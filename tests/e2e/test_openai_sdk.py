"""The gateway driven end to end with the official OpenAI SDK, as users drive it."""

from __future__ import annotations

import base64
import struct

import openai
import pytest


def test_sync_chat_completion(sync_client: openai.OpenAI) -> None:
    completion = sync_client.chat.completions.create(
        model="chat-model", messages=[{"role": "user", "content": "ping pong"}]
    )
    assert completion.choices[0].message.content.startswith("Echo: ping pong")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_sync_stream_without_usage_hides_usage_chunk(sync_client: openai.OpenAI) -> None:
    chunks = list(
        sync_client.chat.completions.create(
            model="chat-model", messages=[{"role": "user", "content": "a b"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Echo: a b")
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


async def test_async_stream_with_usage(async_client: openai.AsyncOpenAI) -> None:
    stream = await async_client.chat.completions.create(
        model="chat-model",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5  # the fake sends five content chunks
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 5


async def test_async_chat_completion_response_headers(async_client: openai.AsyncOpenAI) -> None:
    raw = await async_client.chat.completions.with_raw_response.create(
        model="chat-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.parse().choices[0].message.role == "assistant"


def test_embeddings_float_and_base64(sync_client: openai.OpenAI) -> None:
    # The SDK asks for base64 by default and decodes it; ask for floats explicitly too.
    decoded = sync_client.embeddings.create(model="embed-model", input=["one", "two"])
    floats = sync_client.embeddings.create(
        model="embed-model", input=["one", "two"], encoding_format="float"
    )
    assert [len(d.embedding) for d in decoded.data] == [8, 8]
    assert decoded.data[0].embedding == [
        struct.unpack("<f", struct.pack("<f", x))[0] for x in floats.data[0].embedding
    ]
    assert floats.usage.prompt_tokens > 0
    raw = sync_client.embeddings.with_raw_response.create(
        model="embed-model", input="one", encoding_format="base64"
    )
    assert base64.b64decode(raw.http_response.json()["data"][0]["embedding"])


async def test_models_lists_configured_names(async_client: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in async_client.models.list()]
    assert models == ["chat-model", "embed-model"]


def test_unknown_model_is_404(sync_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sync_client.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "model_not_found"
    assert caught.value.body["type"] == "invalid_request_error"
