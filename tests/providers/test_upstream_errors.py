"""One contract, run over every OpenAI-style provider: upstream failures map to our errors."""

from __future__ import annotations

import httpx
import pytest
from pytest_httpx import HTTPXMock

from symbiosis.exceptions import (
    InvalidRequestError,
    RateLimitError,
    SymbiosisError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from symbiosis.providers import (
    AzureOpenAIProvider,
    OpenAICompatibleProvider,
    OpenAIProvider,
    Provider,
)
from symbiosis.wire import ChatCompletionRequest

PROVIDERS = {
    "openai": lambda: OpenAIProvider(api_key="sk-up", base_url="https://up.test/v1", timeout=5),
    "azure_openai": lambda: AzureOpenAIProvider(
        api_key="az-key", base_url="https://up.test", timeout=5
    ),
    "openai_compatible": lambda: OpenAICompatibleProvider(base_url="https://up.test/v1", timeout=5),
}
REQUEST = ChatCompletionRequest.model_validate(
    {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
)


@pytest.fixture(params=sorted(PROVIDERS))
async def provider(request: pytest.FixtureRequest) -> Provider:
    p = PROVIDERS[request.param]()
    yield p
    await p.aclose()


def _error(message: str) -> dict:
    return {"error": {"message": message, "type": "x", "param": "temperature", "code": "bad"}}


async def _chat_error(provider: Provider) -> SymbiosisError:
    with pytest.raises(SymbiosisError) as caught:
        await provider.chat(REQUEST)
    return caught.value


async def _stream_error(provider: Provider) -> SymbiosisError:
    with pytest.raises(SymbiosisError) as caught:
        async for _ in provider.chat_stream(REQUEST):
            pass
    return caught.value


@pytest.mark.parametrize("call", [_chat_error, _stream_error], ids=["json", "stream"])
async def test_upstream_400_passes_message_through(provider, call, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=400, json=_error("temperature is too hot"))
    error = await call(provider)
    assert type(error) is InvalidRequestError
    assert (error.status_code, error.message, error.param) == (
        400,
        "temperature is too hot",
        "temperature",
    )


@pytest.mark.parametrize("status", [401, 403])
async def test_upstream_auth_failure_is_502_not_the_clients_fault(
    provider: Provider, status: int, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=status, json=_error("bad key"))
    error = await _chat_error(provider)
    assert type(error) is UpstreamError
    assert (error.status_code, error.code) == (502, "bad_upstream_response")
    assert "not your API key" in error.message


async def test_upstream_429_keeps_retry_after(provider: Provider, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=429, json=_error("slow down"), headers={"retry-after": "7"})
    error = await _chat_error(provider)
    assert type(error) is RateLimitError
    assert error.status_code == 429
    assert error.headers() == {"retry-after": "7"}


@pytest.mark.parametrize(
    ("status", "expected", "code"),
    [
        (500, UpstreamError, "bad_upstream_response"),
        (502, UpstreamUnavailableError, "upstream_unavailable"),
        (503, UpstreamUnavailableError, "upstream_unavailable"),
        (504, UpstreamTimeoutError, "upstream_timeout"),
    ],
)
async def test_upstream_5xx(
    provider: Provider, status: int, expected: type, code: str, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(status_code=status, text="<html>oops</html>")
    error = await _chat_error(provider)
    assert type(error) is expected
    assert error.code == code
    assert str(status) in error.message


async def test_503_retry_after_is_forwarded(provider: Provider, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=503, headers={"retry-after": "3"})
    error = await _chat_error(provider)
    assert (error.status_code, error.headers()) == (503, {"retry-after": "3"})


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        (httpx.ConnectError("refused"), UpstreamUnavailableError),
        (httpx.ConnectTimeout("slow connect"), UpstreamUnavailableError),
        (httpx.ReadTimeout("slow read"), UpstreamTimeoutError),
        (httpx.RemoteProtocolError("reset"), UpstreamError),
        (httpx.ReadError("connection reset by peer"), UpstreamError),
    ],
)
@pytest.mark.parametrize("call", [_chat_error, _stream_error], ids=["json", "stream"])
async def test_connection_failures(
    provider: Provider, call, exception: Exception, expected: type, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(exception)
    error = await call(provider)
    assert type(error) is expected


async def test_garbage_body_is_502(provider: Provider, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=200, text="this is not json")
    error = await _chat_error(provider)
    assert type(error) is UpstreamError
    assert error.status_code == 502


async def test_real_timeout_is_504() -> None:
    """A live upstream that answers slower than the provider's ``timeout``."""
    from symbiosis.demo.fake_upstream import FakeUpstream
    from symbiosis.server import serve_in_thread

    with serve_in_thread(FakeUpstream(delay=2.0)) as url:
        async with OpenAICompatibleProvider(base_url=f"{url}/v1", timeout=0.3) as provider:
            error = await _chat_error(provider)
    assert type(error) is UpstreamTimeoutError
    assert error.status_code == 504


async def test_unreachable_upstream_is_503() -> None:
    async with OpenAICompatibleProvider(base_url="http://127.0.0.1:9/v1", timeout=2) as provider:
        error = await _chat_error(provider)
    assert (type(error), error.status_code) == (UpstreamUnavailableError, 503)
