"""Bad requests and failing upstreams reach clients as OpenAI-shaped errors, never tracebacks."""

from __future__ import annotations

import httpx
import openai
import pytest
from pytest_httpx import HTTPXMock

from symbiosis.settings import Settings

from ..conftest import TEST_KEY, MakeApp, asgi_client, config_for

UPSTREAM = "https://upstream.test/v1"
CHAT = {"model": "chat-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def http(make_app: MakeApp) -> httpx.AsyncClient:
    app = make_app(config_for(UPSTREAM), settings=Settings(max_request_bytes=4096))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://gateway",
        headers={"authorization": f"Bearer {TEST_KEY}"},
    )


def _assert_openai_error(response: httpx.Response, status: int, code: str | None) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    return error


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({**CHAT, "temperature": 3}, "temperature", "above_max_value"),
        ({**CHAT, "top_p": -1}, "top_p", "below_min_value"),
        ({"model": "chat-model"}, "messages", "missing_required_parameter"),
        ({**CHAT, "messages": []}, "messages", "empty_array"),
        (
            {**CHAT, "messages": [{"role": "wizard", "content": "x"}]},
            "messages[0]",
            "invalid_value",
        ),
        (
            {**CHAT, "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
            "invalid_value",
        ),
        ({**CHAT, "n": "two"}, "n", "invalid_value"),
    ],
)
async def test_invalid_fields_are_400_naming_the_param(
    http: httpx.AsyncClient, body: dict, param: str, code: str
) -> None:
    response = await http.post("/v1/chat/completions", json=body)
    error = _assert_openai_error(response, 400, code)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert param.split("[")[0] in error["message"]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"", b'"text"'])
async def test_malformed_json_is_400(http: httpx.AsyncClient, content: bytes) -> None:
    response = await http.post(
        "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    error = _assert_openai_error(response, 400, None)
    assert error["type"] == "invalid_request_error"


async def test_body_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    response = await http.post("/v1/chat/completions", json=big)
    _assert_openai_error(response, 413, "request_too_large")


async def test_streamed_body_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    async def body():
        for _ in range(10):
            yield b"x" * 1000

    response = await http.post("/v1/chat/completions", content=body())
    _assert_openai_error(response, 413, "request_too_large")


async def test_unknown_route_is_openai_shaped_404(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/nothing-here", json={})
    _assert_openai_error(response, 404, "unknown_url")


async def test_upstream_429_reaches_client_with_retry_after(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        status_code=429, json={"error": {"message": "slow"}}, headers={"retry-after": "12"}
    )
    response = await http.post("/v1/chat/completions", json=CHAT)
    error = _assert_openai_error(response, 429, "rate_limit_exceeded")
    assert error["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "12"


@pytest.mark.parametrize(
    ("upstream_status", "status", "code"),
    [
        (401, 502, "bad_upstream_response"),
        (503, 503, "upstream_unavailable"),
        (504, 504, "upstream_timeout"),
        (500, 502, "bad_upstream_response"),
    ],
)
async def test_upstream_failures_reach_client(
    http: httpx.AsyncClient, httpx_mock: HTTPXMock, upstream_status: int, status: int, code: str
) -> None:
    httpx_mock.add_response(status_code=upstream_status, text="nope")
    response = await http.post("/v1/chat/completions", json=CHAT)
    assert _assert_openai_error(response, status, code)["type"] == "upstream_error"


async def test_error_after_stream_start_is_a_final_sse_event(
    make_app: MakeApp, httpx_mock: HTTPXMock
) -> None:
    chunk = (
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"partial"},"finish_reason":null}]}\n\n'
    )
    httpx_mock.add_response(
        stream=_BrokenStream(chunk), headers={"content-type": "text/event-stream"}
    )
    client = asgi_client(make_app(config_for(UPSTREAM)))
    stream = await client.chat.completions.create(
        model="chat-model", messages=[{"role": "user", "content": "x"}], stream=True
    )
    received: list[str | None] = []

    async def consume() -> None:
        async for c in stream:
            received.append(c.choices[0].delta.content)

    with pytest.raises(openai.APIError) as caught:
        await consume()
    assert received == ["partial"]
    assert caught.value.body["type"] == "upstream_error"
    assert caught.value.body["code"] == "bad_upstream_response"


class _BrokenStream(httpx.AsyncByteStream):
    """An upstream body that sends one chunk, then the connection breaks."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    async def __aiter__(self):
        yield self.first
        raise httpx.ReadError("connection reset by peer")


async def test_unexpected_failure_is_json_500_not_a_traceback(
    make_app: MakeApp, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_exception(RuntimeError("a bug somewhere below"))
    app = make_app(config_for(UPSTREAM))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.post(
            "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {TEST_KEY}"}
        )
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "api_error"
    assert "Traceback" not in response.text
    assert "a bug somewhere below" not in response.text
