"""A fast fake of an OpenAI-compatible server, as a bare ASGI app.

It backs ``symbiosis demo``, the tests that need a real socket and the benchmarks, so
it stays small and cheap: canned answers built from the request, optional delays.
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


@dataclass
class FakeUpstream:
    """Answers chat completions (JSON and SSE), embeddings and the model list.

    ``chunks`` is how many content chunks a stream has; ``chunk_delay`` waits between
    them, ``delay`` before answering at all; ``fail_status`` makes every call fail.
    """

    chunks: int = 20
    chunk_delay: float = 0.0
    delay: float = 0.0
    fail_status: int | None = None
    dimensions: int = 8
    calls: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        self.calls += 1
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"]
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_status is not None:
            error = {"error": {"message": "fake failure", "type": "server_error"}}
            await _send_json(send, error, self.fail_status)
        elif path.endswith("/chat/completions"):
            request = orjson.loads(body)
            if request.get("stream"):
                await self._stream(request, send)
            else:
                await _send_json(send, _completion(request))
        elif path.endswith("/embeddings"):
            await _send_json(send, _embeddings(orjson.loads(body), self.dimensions))
        elif path.endswith("/models"):
            await _send_json(
                send,
                {
                    "object": "list",
                    "data": [{"id": "fake", "object": "model", "created": 0, "owned_by": "fake"}],
                },
            )
        else:
            await _send_json(
                send, {"error": {"message": "not found", "type": "invalid_request_error"}}, 404
            )

    async def _stream(self, request: dict[str, Any], send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE})
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request["model"],
        }
        words = _answer_words(request, self.chunks)
        first = {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        }
        await _send_event(send, first)
        for word in words:
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            chunk = {
                **base,
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
            }
            await _send_event(send, chunk)
        last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await _send_event(send, last)
        if (request.get("stream_options") or {}).get("include_usage"):
            await _send_event(send, {**base, "choices": [], "usage": _usage(request, len(words))})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


def _prompt_tokens(request: dict[str, Any]) -> int:
    text = orjson.dumps(request.get("messages", []))
    return max(1, len(text) // 4)


def _usage(request: dict[str, Any], completion: int) -> dict[str, int]:
    prompt = _prompt_tokens(request)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _answer_words(request: dict[str, Any], count: int) -> list[str]:
    last = request.get("messages", [{}])[-1].get("content") or ""
    if not isinstance(last, str):
        last = " ".join(p.get("text", "") for p in last if isinstance(p, dict))
    words = ("Echo: " + last).split() or ["Echo:"]
    return [f"{words[i % len(words)]} " for i in range(count)]


def _completion(request: dict[str, Any]) -> dict[str, Any]:
    words = _answer_words(request, 12)
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request["model"],
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "".join(words).strip()},
            }
        ],
        "usage": _usage(request, len(words)),
    }


def _embeddings(request: dict[str, Any], dimensions: int) -> dict[str, Any]:
    inputs = request["input"]
    if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
        inputs = [inputs]
    dims = request.get("dimensions") or dimensions
    data = []
    for index, item in enumerate(inputs):
        seed = sum(orjson.dumps(item)) % 997
        vector = [((seed + i * 31) % 97) / 97 for i in range(dims)]
        if request.get("encoding_format") == "base64":
            encoded: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        else:
            encoded = vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(len(orjson.dumps(i)) // 4 + 1 for i in inputs)
    return {
        "object": "list",
        "data": data,
        "model": request["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


async def _send_json(send: Send, payload: Any, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _JSON})
    await send({"type": "http.response.body", "body": orjson.dumps(payload)})


async def _send_event(send: Send, payload: Any) -> None:
    frame = b"data: " + orjson.dumps(payload) + b"\n\n"
    await send({"type": "http.response.body", "body": frame, "more_body": True})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
