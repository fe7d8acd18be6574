"""What each OpenAI-style provider sends upstream: URL, headers and body."""

from __future__ import annotations

import json

from pytest_httpx import HTTPXMock

from symbiosis.providers import AzureOpenAIProvider, OpenAICompatibleProvider, OpenAIProvider
from symbiosis.wire import ChatCompletionRequest, EmbeddingsRequest

COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-x",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {
        "prompt_tokens": 3,
        "completion_tokens": 1,
        "total_tokens": 4,
        "prompt_tokens_details": {"cached_tokens": 2},
    },
    "service_tier": "default",
}


def _request(**extra: object) -> ChatCompletionRequest:
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}], **extra}
    return ChatCompletionRequest.model_validate(body)


async def test_openai_sends_bearer_and_exact_body(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://api.example/v1/chat/completions", json=COMPLETION)
    async with OpenAIProvider(api_key="sk-up", base_url="https://api.example/v1/") as provider:
        result = await provider.chat(_request(temperature=0.5, future_field={"x": 1}))
    sent = httpx_mock.get_request()
    assert sent.headers["authorization"] == "Bearer sk-up"
    # Only what the client set is forwarded, unknown fields included; stream keys are not.
    assert json.loads(sent.content) == {
        "model": "gpt-x",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.5,
        "future_field": {"x": 1},
    }
    assert result.usage.cached_tokens == 2
    assert result.model_extra == {"service_tier": "default"}


async def test_stream_always_asks_for_usage(httpx_mock: HTTPXMock) -> None:
    stream = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\n\n'
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n'
        b"data: [DONE]\n\n"
    )
    httpx_mock.add_response(content=stream, headers={"content-type": "text/event-stream"})
    async with OpenAICompatibleProvider(base_url="http://local.test/v1") as provider:
        chunks = [c async for c in provider.chat_stream(_request(stream=True))]
    body = json.loads(httpx_mock.get_request().content)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "authorization" not in httpx_mock.get_request().headers
    assert [c.is_usage_only for c in chunks] == [False, True]


async def test_azure_deployment_url_api_version_and_api_key(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url="https://res.openai.azure.com/openai/deployments/my-dep/chat/completions"
        "?api-version=2024-10-21",
        json=COMPLETION,
    )
    async with AzureOpenAIProvider(
        base_url="https://res.openai.azure.com", api_key="az-key"
    ) as provider:
        await provider.chat(_request().model_copy(update={"model": "my-dep"}))
    sent = httpx_mock.get_request()
    assert sent.headers["api-key"] == "az-key"
    assert "authorization" not in sent.headers
    assert "model" not in json.loads(sent.content)  # the deployment is in the URL


async def test_azure_v1_endpoint_keeps_model_in_body(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url="https://res.openai.azure.com/openai/v1/embeddings",
        json={
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
            "model": "emb",
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        },
    )
    async with AzureOpenAIProvider(
        base_url="https://res.openai.azure.com/openai/v1", api_key="k"
    ) as provider:
        result = await provider.embeddings(EmbeddingsRequest(model="emb", input="x"))
    assert json.loads(httpx_mock.get_request().content) == {"model": "emb", "input": "x"}
    assert result.data[0].embedding == [0.1]


async def test_openai_compatible_preset_fills_base_url(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="http://127.0.0.1:11434/v1/chat/completions", json=COMPLETION)
    async with OpenAICompatibleProvider(preset="ollama") as provider:
        result = await provider.chat(_request())
    assert result.choices[0].message.content == "hi"
