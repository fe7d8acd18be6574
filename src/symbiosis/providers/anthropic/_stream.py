"""Anthropic stream events to OpenAI ``chat.completion.chunk`` objects, one event at a time.

Chunks are produced as events arrive, never buffered: a role chunk on
``message_start``, content / tool-call / reasoning deltas on ``content_block_*``, the
finish reason on ``message_delta`` and a usage-only chunk on ``message_stop``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ...exceptions import (
    InvalidRequestError,
    RateLimitError,
    RequestTooLargeError,
    SymbiosisError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from ...wire import ChatCompletionChunk, ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta
from ...wire.anthropic import AnthropicUsage
from ._convert import dump_arguments, finish_reason

# Anthropic error ``type`` -> our error; anything else is a plain 502.
_STREAM_ERRORS: dict[str, type[SymbiosisError]] = {
    "invalid_request_error": InvalidRequestError,
    "request_too_large": RequestTooLargeError,
    "rate_limit_error": RateLimitError,
    "overloaded_error": UpstreamUnavailableError,
    "timeout_error": UpstreamTimeoutError,
}


def stream_error(provider: str, error: Any) -> SymbiosisError:
    """The error for an ``error`` event sent after the HTTP status was already 200."""
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or "api_error")
    message = str(error.get("message") or kind)
    cls = _STREAM_ERRORS.get(kind, UpstreamError)
    if cls is InvalidRequestError:
        return cls(message)
    return cls(f"{provider} failed mid-stream ({kind}: {message})")


class StreamTranslator:
    """Turns the events of one Anthropic stream into OpenAI chunks.

    Feed each event's JSON data to ``feed``; ``done`` turns true on ``message_stop``,
    after the final usage-only chunk has been returned.
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.done = False
        self._id = ""
        self._model = ""
        self._created = int(time.time())
        self._usage = AnthropicUsage()
        self._stop_reason: str | None = None
        self._finished = False
        self._tool_index: dict[int, int] = {}  # content block index -> tool_calls index
        self._thinking: dict[int, dict[str, Any]] = {}  # block index -> block being built

    def feed(self, data: str) -> list[ChatCompletionChunk]:
        try:
            event = orjson.loads(data)
            return self._event(event)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise UpstreamError(
                f"{self.provider} sent a malformed stream event: {data[:200]}"
            ) from exc

    def _event(self, event: dict[str, Any]) -> list[ChatCompletionChunk]:
        match event["type"]:
            case "message_start":
                return self._message_start(event["message"])
            case "content_block_start":
                return self._block_start(event["index"], event["content_block"])
            case "content_block_delta":
                return self._block_delta(event["index"], event["delta"])
            case "content_block_stop":
                return self._block_stop(event["index"])
            case "message_delta":
                return self._message_delta(event)
            case "message_stop":
                return self._message_stop()
            case "error":
                raise stream_error(self.provider, event.get("error"))
            case _:  # ping, and event types added after this was written
                return []

    def _chunk(self, delta: Delta | None, finish: str | None = None) -> ChatCompletionChunk:
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]
        return ChatCompletionChunk(
            id=self._id, created=self._created, model=self._model, choices=choices
        )

    def _message_start(self, message: dict[str, Any]) -> list[ChatCompletionChunk]:
        self._id = message["id"]
        self._model = message.get("model") or ""
        self._usage = AnthropicUsage.model_validate(message.get("usage") or {})
        return [self._chunk(Delta(role="assistant", content=""))]

    def _block_start(self, index: int, block: dict[str, Any]) -> list[ChatCompletionChunk]:
        kind = block["type"]
        if kind == "text" and block.get("text"):
            return [self._chunk(Delta(content=block["text"]))]
        if kind == "tool_use":
            position = self._tool_index[index] = len(self._tool_index)
            arguments = dump_arguments(block["input"]) if block.get("input") else ""
            call = ToolCallDelta(
                index=position,
                id=block["id"],
                type="function",
                function=FunctionCallDelta(name=block["name"], arguments=arguments),
            )
            return [self._chunk(Delta(tool_calls=[call]))]
        if kind in ("thinking", "redacted_thinking"):
            self._thinking[index] = dict(block)
            if block.get("thinking"):
                return [self._chunk(Delta(reasoning_content=block["thinking"]))]
        return []

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[ChatCompletionChunk]:
        kind = delta["type"]
        if kind == "text_delta":
            return [self._chunk(Delta(content=delta["text"]))]
        position = self._tool_index.get(index)  # None for server-tool blocks: not ours
        if kind == "input_json_delta" and delta["partial_json"] and position is not None:
            arguments = FunctionCallDelta(arguments=delta["partial_json"])
            call = ToolCallDelta(index=position, function=arguments)
            return [self._chunk(Delta(tool_calls=[call]))]
        block = self._thinking.get(index, {})
        if kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta["thinking"]
            return [self._chunk(Delta(reasoning_content=delta["thinking"]))]
        if kind == "signature_delta":
            block["signature"] = delta["signature"]
        return []  # citations and other deltas have no OpenAI counterpart

    def _block_stop(self, index: int) -> list[ChatCompletionChunk]:
        """A finished thinking block goes out whole, signed, for the client to send back."""
        block = self._thinking.pop(index, None)
        if block is None:
            return []
        return [self._chunk(Delta(thinking_blocks=[block]))]

    def _message_delta(self, event: dict[str, Any]) -> list[ChatCompletionChunk]:
        self._usage = self._usage.merged(event.get("usage") or {})
        self._stop_reason = (event.get("delta") or {}).get("stop_reason") or self._stop_reason
        if self._stop_reason is None or self._finished:
            return []
        self._finished = True
        return [self._chunk(Delta(), finish_reason(self._stop_reason))]

    def _message_stop(self) -> list[ChatCompletionChunk]:
        self.done = True
        chunks = [] if self._finished else [self._chunk(Delta(), "stop")]
        usage_chunk = self._chunk(None)
        usage_chunk.usage = self._usage.to_usage()
        return [*chunks, usage_chunk]
