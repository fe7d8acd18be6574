"""Chat answers from an OpenAI-style upstream reach the client byte for byte."""

from __future__ import annotations

import httpx
import pytest
from pytest_httpx import HTTPXMock

from symbiosis.services.usage import MemoryUsageRecorder

from ..conftest import TEST_KEY, MakeApp, config_for

ANSWER = (
    b'{"id":"c1","object":"chat.completion","created":1,"model":"m-2025",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,'
    b'"total_tokens":4},"vendor_extension":{"x":1}}'
)
CHAT = {"model": "chat-model", "messages": [{"role": "user", "content": "x"}]}


async def _ask(make_app: MakeApp, usage: MemoryUsageRecorder) -> httpx.Response:
    app = make_app(config_for("https://upstream.test/v1"), usage=usage)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as http:
        return await http.post(
            "/v1/chat/completions", json=CHAT, headers={"authorization": f"Bearer {TEST_KEY}"}
        )


async def test_answer_is_relayed_unchanged_and_metered(
    make_app: MakeApp, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(content=ANSWER, headers={"content-type": "application/json"})
    usage = MemoryUsageRecorder()
    response = await _ask(make_app, usage)
    assert response.status_code == 200
    assert response.content == ANSWER  # no fields added, unknown ones kept
    [event] = usage.events
    assert (event.input_tokens, event.output_tokens) == (3, 1)


@pytest.mark.parametrize(
    "answer",
    [b"<html>oops</html>", b"[1, 2]", b'{"id": "c1", "object": "chat.completion"}',
     b'{"choices": [], "usage": {"prompt_tokens": "many"}}'],
)  # fmt: skip
async def test_a_malformed_answer_is_a_502(
    make_app: MakeApp, httpx_mock: HTTPXMock, answer: bytes
) -> None:
    httpx_mock.add_response(content=answer)
    usage = MemoryUsageRecorder()
    response = await _ask(make_app, usage)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "bad_upstream_response"
    assert [e.status for e in usage.events] == [502]
