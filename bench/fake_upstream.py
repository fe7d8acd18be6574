"""A lean OpenAI-compatible (and Anthropic Messages) fake upstream for the benchmark.

Why not ``symbiosis.demo.fake_upstream.FakeUpstream`` under uvicorn: the upstream must
never be the bottleneck, and on a 2-core machine it shares a core with the load
generator. This server is raw asyncio (uvloop) + httptools, HTTP/1.1 keep-alive, and
caches every rendered answer, so it spends a few microseconds per request
(``docs/benchmarks.md`` has the measured comparison; ``--impl uvicorn`` serves the demo
fake for that comparison).

Answers have the same shape as the demo fake's: a 12-word ``chat.completion``, or a
stream of one role chunk, ``--chunks`` content chunks, a finish chunk, a usage chunk when
``stream_options.include_usage`` is set, and ``data: [DONE]``. Each SSE event is written
as its own HTTP chunk (one ``send`` per event, as a real server flushes per token);
``--chunk-delay-ms`` spaces them out in time.

``POST /v1/messages`` speaks Anthropic's Messages API the same way: a ``message`` with
the 12 words, or Anthropic's event stream (``message_start``, ``content_block_start``,
``--chunks`` ``text_delta`` events, ``content_block_stop``, ``message_delta`` with the
usage, ``message_stop``), each event framed ``event: <type>\ndata: <json>\n\n``.

Run: ``python bench/fake_upstream.py --port 9001`` (prints ``ready`` once listening).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, cast

import httptools
import orjson
import uvloop

_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
_NOT_FOUND = b'{"error":{"message":"not found","type":"invalid_request_error"}}'
_BAD_REQUEST = b'{"error":{"message":"bad request","type":"invalid_request_error"}}'
_MODELS = b'{"object":"list","data":[{"id":"fake","object":"model","created":0,"owned_by":"fake"}]}'
_CACHE_LIMIT = 4096


def _json_response(body: bytes, status: bytes = b"200 OK") -> bytes:
    head = (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


def _event(payload: dict[str, Any]) -> bytes:
    return _http_chunk(b"data: " + orjson.dumps(payload) + b"\n\n")


def _named_event(payload: dict[str, Any]) -> bytes:
    """Anthropic's framing: the event's type on an ``event:`` line before its data."""
    kind = payload["type"].encode()
    return _http_chunk(b"event: " + kind + b"\ndata: " + orjson.dumps(payload) + b"\n\n")


def _words(request: dict[str, Any], count: int) -> list[str]:
    messages = request.get("messages") or [{}]
    last = messages[-1].get("content") or ""
    if not isinstance(last, str):
        last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
    words = ("Echo: " + last).split() or ["Echo:"]
    return [f"{words[i % len(words)]} " for i in range(count)]


def _usage(request: dict[str, Any], completion: int) -> dict[str, int]:
    prompt = max(1, len(orjson.dumps(request.get("messages", []))) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def render_completion(request: dict[str, Any]) -> bytes:
    """The whole HTTP response to a non-streaming chat request."""
    words = _words(request, 12)
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "".join(words).strip()},
            }
        ],
        "usage": _usage(request, len(words)),
    }
    return _json_response(orjson.dumps(body))


def render_stream(request: dict[str, Any], chunks: int) -> list[bytes]:
    """The writes of a streamed answer: headers, one HTTP chunk per SSE event, the end."""
    base = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
    }
    words = _words(request, chunks)
    role = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    writes = [_STREAM_HEAD + _event({**base, "choices": [role]})]
    for word in words:
        choice = {"index": 0, "delta": {"content": word}, "finish_reason": None}
        writes.append(_event({**base, "choices": [choice]}))
    writes.append(_event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    if (request.get("stream_options") or {}).get("include_usage"):
        writes.append(_event({**base, "choices": [], "usage": _usage(request, len(words))}))
    writes.append(_http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
    return writes


def _anthropic_message(request: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, Any]:
    prompt = len(orjson.dumps([request.get("system"), request.get("messages", [])])) // 4
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": request.get("model", "fake"),
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": max(1, prompt), "output_tokens": 12},
    }


def render_message(request: dict[str, Any]) -> bytes:
    """The whole HTTP response to a non-streaming Anthropic Messages request."""
    text = "".join(_words(request, 12)).strip()
    return _json_response(
        orjson.dumps(_anthropic_message(request, [{"type": "text", "text": text}]))
    )


def render_message_stream(request: dict[str, Any], chunks: int) -> list[bytes]:
    """The writes of a streamed Anthropic answer: one HTTP chunk per event, then the end."""
    start = _anthropic_message(request, [])
    start.update(stop_reason=None, usage={**start["usage"], "output_tokens": 1})
    block = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    writes = [_STREAM_HEAD + _named_event({"type": "message_start", "message": start})]
    writes.append(_named_event(block))
    for word in _words(request, chunks):
        delta = {"type": "text_delta", "text": word}
        writes.append(_named_event({"type": "content_block_delta", "index": 0, "delta": delta}))
    writes.append(_named_event({"type": "content_block_stop", "index": 0}))
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    writes.append(
        _named_event({"type": "message_delta", "delta": stop, "usage": {"output_tokens": chunks}})
    )
    writes.append(_named_event({"type": "message_stop"}) + b"0\r\n\r\n")
    return writes


Answer = tuple[bool, list[bytes]]


class Answers:
    """Renders answers once per distinct request body: the fake's per-request cost is a
    dict lookup plus the socket writes."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self._chat: dict[bytes, Answer] = {}
        self._messages: dict[bytes, Answer] = {}

    def for_body(self, body: bytes) -> Answer:
        """``(is_stream, writes)`` for a chat completions request body."""
        return self._cached(self._chat, body, render_completion, render_stream)

    def for_messages(self, body: bytes) -> Answer:
        """``(is_stream, writes)`` for an Anthropic Messages request body."""
        return self._cached(self._messages, body, render_message, render_message_stream)

    def _cached(
        self,
        cache: dict[bytes, Answer],
        body: bytes,
        whole: Callable[[dict[str, Any]], bytes],
        stream: Callable[[dict[str, Any], int], list[bytes]],
    ) -> Answer:
        cached = cache.get(body)
        if cached is None:
            cached = self._render(body, whole, stream)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[body] = cached
        return cached

    def _render(
        self,
        body: bytes,
        whole: Callable[[dict[str, Any]], bytes],
        stream: Callable[[dict[str, Any], int], list[bytes]],
    ) -> Answer:
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            return False, [_json_response(_BAD_REQUEST, b"400 Bad Request")]
        if not isinstance(request, dict):
            return False, [_json_response(_BAD_REQUEST, b"400 Bad Request")]
        if request.get("stream"):
            return True, stream(request, self.chunks)
        return False, [whole(request)]


class FakeUpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection; httptools parses, requests are answered in order."""

    def __init__(self, answers: Answers, chunk_delay: float) -> None:
        self._answers = answers
        self._delay = chunk_delay
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._pending: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._pending is not None:
            self._pending.cancel()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        url, body = self._url, b"".join(self._body)
        self._url, self._body = b"", []
        if self._transport is None:
            return
        if self._parser.get_method() == b"GET" and url.endswith(b"/models"):
            self._transport.write(_json_response(_MODELS))
        elif url.endswith(b"/chat/completions"):
            self._answer(*self._answers.for_body(body))
        elif url.endswith(b"/v1/messages"):
            self._answer(*self._answers.for_messages(body))
        else:
            self._transport.write(_json_response(_NOT_FOUND, b"404 Not Found"))
        if not self._parser.should_keep_alive():
            self._transport.close()

    def _answer(self, stream: bool, writes: list[bytes]) -> None:
        """Write an answer now, or a stream paced by ``--chunk-delay-ms``."""
        if stream and self._delay > 0:
            self._pending = asyncio.ensure_future(self._paced(writes))
            return
        assert self._transport is not None
        for data in writes:
            self._transport.write(data)

    async def _paced(self, writes: list[bytes]) -> None:
        """Send a stream with ``--chunk-delay-ms`` between events, like a real model."""
        for index, data in enumerate(writes):
            if index:
                await asyncio.sleep(self._delay)
            if self._transport is None:
                return
            self._transport.write(data)


async def serve_raw(port: int, chunks: int, chunk_delay: float) -> None:
    """Serve until cancelled (SIGINT/SIGTERM)."""
    loop = asyncio.get_running_loop()
    answers = Answers(chunks)
    server = await loop.create_server(
        lambda: FakeUpstreamProtocol(answers, chunk_delay),
        "127.0.0.1",
        port,
        backlog=1024,
        reuse_address=True,
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def serve_demo(port: int, chunks: int, chunk_delay: float) -> None:
    """The project's demo fake under uvicorn (uvloop + httptools), for comparison."""
    import uvicorn

    from symbiosis.demo.fake_upstream import FakeUpstream

    app = FakeUpstream(chunks=chunks, chunk_delay=chunk_delay)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    parser.add_argument("--impl", choices=["raw", "uvicorn"], default="raw")
    args = parser.parse_args()
    delay = args.chunk_delay_ms / 1000
    if args.impl == "uvicorn":
        serve_demo(args.port, args.chunks, delay)
        return
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve_raw(args.port, args.chunks, delay))


if __name__ == "__main__":
    main()
