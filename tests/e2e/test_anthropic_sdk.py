"""The gateway's ``/v1/messages`` driven over sockets with the official Anthropic SDK.

Against the fake OpenAI-style upstream (translated) and a small fake Anthropic
server (passed through), streaming and not; streams arrive as the upstream sends them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from symbiosis.demo.fake_upstream import FakeUpstream
from symbiosis.server import serve_in_thread

from ..conftest import TEST_KEY, MakeApp, config_for

CHUNK_DELAY = 0.25
CHUNKS = 6
HI = [{"role": "user", "content": "x"}]


@dataclass
class FakeAnthropic:
    """A tiny Messages API: echoes the last user text, streamed a word per event."""

    delay: float = 0.0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    api_keys: list[str | None] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = orjson.loads(body)
        self.bodies.append(request)
        self.api_keys.append(dict(scope["headers"]).get(b"x-api-key", b"").decode() or None)
        words = [f"{w} " for w in ("Echo: " + request["messages"][-1]["content"]).split()]
        if request.get("stream"):
            await self._stream(request["model"], words, send)
            return
        answer = _message(request["model"], [{"type": "text", "text": "".join(words)}])
        answer["stop_reason"] = "end_turn"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(answer)})

    async def _stream(self, model: str, words: list[str], send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )

        async def event(payload: dict[str, Any]) -> None:
            frame = f"event: {payload['type']}\ndata: ".encode() + orjson.dumps(payload)
            await send({"type": "http.response.body", "body": frame + b"\n\n", "more_body": True})

        await event({"type": "message_start", "message": _message(model, [])})
        block = {"type": "text", "text": ""}
        await event({"type": "content_block_start", "index": 0, "content_block": block})
        for word in words:
            await asyncio.sleep(self.delay)
            delta = {"type": "text_delta", "text": word}
            await event({"type": "content_block_delta", "index": 0, "delta": delta})
        await event({"type": "content_block_stop", "index": 0})
        await event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(words)},
            }
        )
        await event({"type": "message_stop"})
        await send({"type": "http.response.body", "body": b""})


def _message(model: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "cache_read_input_tokens": 4, "output_tokens": 1},
    }


def claude_config(base_url: str) -> str:
    return f"""
    [providers.claude]
    type = "anthropic"
    base_url = "{base_url}"
    api_key = "sk-ant-upstream"

    [[models]]
    name = "claude"
    provider = "claude"
    model = "claude-upstream"
    """


@pytest.fixture
def claude_url(make_app: MakeApp) -> Iterator[tuple[str, FakeAnthropic]]:
    """A gateway on a socket in front of a fake Anthropic on another."""
    fake = FakeAnthropic()
    with (
        serve_in_thread(fake) as upstream_url,
        serve_in_thread(make_app(claude_config(upstream_url))) as url,
    ):
        yield url, fake


def sdk(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=TEST_KEY, max_retries=0)


# -- an OpenAI-style upstream, translated ------------------------------------------------


def test_message_from_openai_style_model(gateway_url: str) -> None:
    with sdk(gateway_url) as client:
        message = client.messages.create(
            model="chat-model", max_tokens=50, messages=[{"role": "user", "content": "ping pong"}]
        )
    assert message.type == "message"
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("Echo: ping pong")
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens == 12  # the fake's answer has twelve words


async def test_stream_from_openai_style_model(gateway_url: str) -> None:
    client = anthropic.AsyncAnthropic(base_url=gateway_url, api_key=TEST_KEY, max_retries=0)
    async with client.messages.stream(
        model="chat-model", max_tokens=50, messages=[{"role": "user", "content": "count"}]
    ) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(texts) == 5  # the fake sends five content chunks
    assert "".join(texts).startswith("Echo: count")
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5
    await client.close()


def test_errors_reach_the_sdk_over_a_socket(gateway_url: str) -> None:
    with sdk(gateway_url) as client, pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="nope", max_tokens=5, messages=HI)
    assert caught.value.body["error"]["type"] == "not_found_error"
    assert caught.value.request_id is not None
    with (
        sdk(gateway_url).with_options(api_key="sk-sym-wrong") as client,
        pytest.raises(anthropic.AuthenticationError),
    ):
        client.messages.create(model="chat-model", max_tokens=5, messages=HI)


def test_translated_stream_is_not_buffered(make_app: MakeApp) -> None:
    upstream = FakeUpstream(chunks=CHUNKS, chunk_delay=CHUNK_DELAY)
    with (
        serve_in_thread(upstream) as upstream_url,
        serve_in_thread(make_app(config_for(f"{upstream_url}/v1"))) as url,
        sdk(url) as client,
        client.messages.stream(
            model="chat-model", max_tokens=50, messages=[{"role": "user", "content": "slow"}]
        ) as stream,
    ):
        arrivals = _arrivals(stream)
    _assert_spread(arrivals)


# -- an Anthropic upstream, passed through ----------------------------------------------


def test_message_from_anthropic_model(claude_url: tuple[str, FakeAnthropic]) -> None:
    url, fake = claude_url
    with sdk(url) as client:
        message = client.messages.create(
            model="claude", max_tokens=50, messages=[{"role": "user", "content": "ping"}]
        )
    assert message.content[0].text == "Echo: ping "
    assert message.usage.cache_read_input_tokens == 4
    assert fake.bodies == [
        {
            "model": "claude-upstream",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "ping"}],
        }
    ]
    assert fake.api_keys == ["sk-ant-upstream"]


def test_stream_from_anthropic_model(claude_url: tuple[str, FakeAnthropic]) -> None:
    url, fake = claude_url
    with (
        sdk(url) as client,
        client.messages.stream(
            model="claude", max_tokens=50, messages=[{"role": "user", "content": "a b"}]
        ) as stream,
    ):
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert texts == ["Echo: ", "a ", "b "]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 3)
    assert fake.bodies[0]["stream"] is True


def test_native_stream_is_not_buffered(make_app: MakeApp) -> None:
    fake = FakeAnthropic(delay=CHUNK_DELAY)
    words = " ".join(["w"] * (CHUNKS - 1))  # "Echo:" plus five words
    with (
        serve_in_thread(fake) as upstream_url,
        serve_in_thread(make_app(claude_config(upstream_url))) as url,
        sdk(url) as client,
        client.messages.stream(
            model="claude", max_tokens=50, messages=[{"role": "user", "content": words}]
        ) as stream,
    ):
        arrivals = _arrivals(stream)
    _assert_spread(arrivals)


def _arrivals(stream: Any) -> list[float]:
    started = time.monotonic()
    return [time.monotonic() - started for _ in stream.text_stream]


def _assert_spread(arrivals: list[float]) -> None:
    assert len(arrivals) == CHUNKS
    # The upstream sends the first text after one delay; a buffering gateway would
    # deliver it only after all of them, and all at once.
    assert arrivals[0] < CHUNKS * CHUNK_DELAY - 2 * CHUNK_DELAY
    assert arrivals[-1] - arrivals[0] >= (CHUNKS - 2) * CHUNK_DELAY
