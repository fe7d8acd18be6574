"""Stream chunks from an OpenAI-style upstream reach the client byte for byte."""

from __future__ import annotations

import httpx
import orjson
from pytest_httpx import HTTPXMock

from ..conftest import TEST_KEY, MakeApp, config_for
from ._asgi import body_writes

CHUNK = (
    b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m-2025",'
    b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],'
    b'"vendor_extension":{"x":1}}'
)
USAGE = (
    b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m-2025",'
    b'"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
)


async def _stream(make_app: MakeApp, httpx_mock: HTTPXMock, body: dict) -> list[bytes]:
    upstream = b"data: " + CHUNK + b"\n\ndata: " + USAGE + b"\n\ndata: [DONE]\n\n"
    httpx_mock.add_response(content=upstream, headers={"content-type": "text/event-stream"})
    app = make_app(config_for("https://upstream.test/v1"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as http:
        response = await http.post(
            "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {TEST_KEY}"}
        )
    return [line for line in response.content.split(b"\n") if line]


async def test_chunks_are_relayed_unchanged(make_app: MakeApp, httpx_mock: HTTPXMock) -> None:
    body = {
        "model": "chat-model",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    lines = await _stream(make_app, httpx_mock, body)
    assert lines[0] == b"data: " + CHUNK  # no fields added, unknown ones kept
    assert lines[1] == b"data: " + USAGE
    assert lines[-1] == b"data: [DONE]"


async def test_usage_chunk_is_dropped_when_not_asked(
    make_app: MakeApp, httpx_mock: HTTPXMock
) -> None:
    body = {"model": "chat-model", "messages": [{"role": "user", "content": "x"}], "stream": True}
    lines = await _stream(make_app, httpx_mock, body)
    assert lines[0] == b"data: " + CHUNK
    assert all(b'"usage":{' not in line for line in lines)
    assert lines[-1] == b"data: [DONE]"


async def test_a_malformed_chunk_ends_the_stream_with_a_502_event(
    make_app: MakeApp, httpx_mock: HTTPXMock
) -> None:
    upstream = b"data: " + CHUNK + b"\n\ndata: {not json\n\ndata: [DONE]\n\n"
    httpx_mock.add_response(content=upstream, headers={"content-type": "text/event-stream"})
    app = make_app(config_for("https://upstream.test/v1"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as http:
        response = await http.post(
            "/v1/chat/completions",
            json={"model": "chat-model", "messages": [{"role": "user", "content": "x"}],
                  "stream": True},
            headers={"authorization": f"Bearer {TEST_KEY}"},
        )  # fmt: skip
    lines = [line for line in response.content.split(b"\n") if line]
    assert lines[0] == b"data: " + CHUNK
    assert b'"code":"bad_upstream_response"' in lines[-1]
    assert b"[DONE]" not in response.content


async def _body_messages(make_app: MakeApp, httpx_mock: HTTPXMock, upstream: bytes) -> list[dict]:
    """The ASGI messages the gateway sends for one streamed request."""
    httpx_mock.add_response(content=upstream, headers={"content-type": "text/event-stream"})
    app = make_app(config_for("https://upstream.test/v1"))
    request = orjson.dumps(
        {"model": "chat-model", "messages": [{"role": "user", "content": "x"}], "stream": True,
         "stream_options": {"include_usage": True}}
    )  # fmt: skip
    auth = [(b"authorization", f"Bearer {TEST_KEY}".encode())]
    return await body_writes(app, "/v1/chat/completions", request, auth)


async def test_chunks_that_arrive_together_leave_in_one_write(
    make_app: MakeApp, httpx_mock: HTTPXMock
) -> None:
    events = (CHUNK, CHUNK, USAGE, b"[DONE]")
    upstream = b"".join(b"data: " + event + b"\n\n" for event in events)
    messages = await _body_messages(make_app, httpx_mock, upstream)
    assert len(messages) == 1  # one upstream read, one write, the end of the response with it
    assert messages[0]["more_body"] is False
    lines = [line for line in messages[0]["body"].split(b"\n") if line]
    assert lines == [b"data: " + CHUNK, b"data: " + CHUNK, b"data: " + USAGE, b"data: [DONE]"]


async def test_usage_on_every_chunk_does_not_hold_chunks_back(
    make_app: MakeApp, httpx_mock: HTTPXMock
) -> None:
    """Some servers put running usage on content chunks: only the usage-only chunk ends."""
    with_usage = CHUNK[:-1] + b',"usage":{"prompt_tokens":3,"completion_tokens":1}}'
    upstream = b"data: " + with_usage + b"\n\ndata: [DONE]\n\n"
    messages = await _body_messages(make_app, httpx_mock, upstream)
    assert [m["more_body"] for m in messages] == [True, False]
    assert messages[0]["body"] == b"data: " + with_usage + b"\n\n"
