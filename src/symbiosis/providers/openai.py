"""OpenAI, and the base for every server that speaks the OpenAI wire format."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, ClassVar

import httpx
import orjson
from pydantic import ValidationError

from ..exceptions import UpstreamError
from ..wire import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
    Usage,
)
from ._http import DEFAULT_TIMEOUT
from ._sse import ServerSentEvent, SSEDecoder
from .base import HTTPProvider
from .relay import RelayedChunk, RelayedCompletion


class OpenAIProvider(HTTPProvider):
    """The OpenAI API. ``base_url`` includes the ``/v1`` prefix, as in the OpenAI SDK."""

    type: ClassVar[str] = "openai"
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(timeout=timeout, http_client=http_client, name=name)
        url = base_url or self.default_base_url
        if not url:
            raise ValueError(f"provider type {self.type!r} needs a base_url")
        self.base_url = url.rstrip("/")
        self._headers = {"content-type": "application/json", **(headers or {})}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        if organization:
            self._headers["openai-organization"] = organization
        if project:
            self._headers["openai-project"] = project

    def _url(self, path: str, model: str) -> str:
        return f"{self.base_url}/{path}"

    def _body(self, request: ChatCompletionRequest | EmbeddingsRequest) -> dict[str, Any]:
        return request.wire_body()

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletion:
        return self._parse(ChatCompletion, await self._complete(request))

    async def chat_relay(self, request: ChatCompletionRequest) -> RelayedCompletion:
        """``chat`` as the upstream's bytes, checked to be a completion, usage read."""
        content = await self._complete(request)
        payload = self._object(content, "ChatCompletion")
        if not isinstance(payload.get("choices"), list):
            raise UpstreamError(f"{self.name} sent a malformed ChatCompletion: no choices")
        return RelayedCompletion(content, self._usage(payload.get("usage")))

    async def _complete(self, request: ChatCompletionRequest) -> bytes:
        """The upstream's answer to ``request``, asked for without streaming."""
        body = self._body(request)
        body.pop("stream", None)
        body.pop("stream_options", None)
        return await self._post(self._url("chat/completions", request.model), body, self._headers)

    def _object(self, data: bytes | str, what: str) -> dict[str, Any]:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            text = data if isinstance(data, str) else data.decode("utf-8", "replace")
            raise UpstreamError(f"{self.name} sent a malformed {what}: {text[:200]!r}")
        return payload

    def _usage(self, usage: Any) -> Usage | None:
        if not usage:
            return None
        try:
            return Usage.model_validate(usage)
        except ValidationError as exc:
            raise UpstreamError(
                f"{self.name} sent a malformed usage: {exc.errors(include_url=False)[0]['msg']}"
            ) from exc

    async def chat_stream(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunk]:
        async for data in self._chunk_data(request):
            yield self._parse(ChatCompletionChunk, data)

    async def chat_stream_groups(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[list[ChatCompletionChunk]]:
        """Typed chunks in the groups one upstream read brought; the chunks before a bad
        one are yielded before its error is raised."""
        async with aclosing(self.chat_stream_relay(request)) as groups:
            async for relayed in groups:
                group: list[ChatCompletionChunk] = []
                try:
                    for chunk in relayed:
                        group.append(self._parse(ChatCompletionChunk, chunk.payload))
                except UpstreamError:
                    if group:
                        yield group
                    raise
                yield group

    async def chat_stream_relay(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[list[RelayedChunk]]:
        """The chunks as the upstream's bytes, in the groups one read brought them in."""
        decoder = SSEDecoder()
        url, body = self._stream_call(request)
        # Read to the end of the body, past [DONE]: stopping early would close the
        # connection instead of returning it to the pool.
        async with aclosing(self._post_stream(url, body, self._headers)) as pieces:
            async for piece in pieces:
                batch, error = self._relayed(decoder.feed(piece))
                if batch:
                    yield batch
                if error is not None:
                    raise error
        batch, error = self._relayed(decoder.flush())
        if batch:
            yield batch
        if error is not None:
            raise error

    def _relayed(
        self, events: list[ServerSentEvent]
    ) -> tuple[list[RelayedChunk], UpstreamError | None]:
        """The chunks up to the first bad event, each checked to be a JSON object, and the
        error that bad event is; ``[DONE]`` is dropped."""
        batch = []
        for event in events:
            data = event.data
            if data == "[DONE]":
                continue
            if error := self._stream_error(event):
                return batch, error
            try:
                payload = self._object(data, "chunk")
                usage = payload.get("usage")
                parsed = self._usage(usage) if usage else None
            except UpstreamError as exc:
                return batch, exc
            batch.append(RelayedChunk(data.encode(), payload, parsed, bool(payload.get("choices"))))
        return batch, None

    def _stream_call(self, request: ChatCompletionRequest) -> tuple[str, dict[str, Any]]:
        """The URL and body of a streamed call, asking the upstream for usage at the end."""
        body = self._body(request)
        body["stream"] = True
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return self._url("chat/completions", request.model), body

    async def _chunk_data(self, request: ChatCompletionRequest) -> AsyncIterator[str]:
        """The JSON of each chunk, past ``[DONE]`` to the end of the body (connection reuse)."""
        url, body = self._stream_call(request)
        async for event in self._post_events(url, body, self._headers):
            data = event.data
            if data == "[DONE]":
                continue
            if error := self._stream_error(event):
                raise error
            yield data

    def _stream_error(self, event: ServerSentEvent) -> UpstreamError | None:
        """The error an upstream reports in the middle of a stream, if ``event`` is one."""
        if event.event == "error" or event.data.startswith('{"error"'):
            return UpstreamError(f"{self.name} failed mid-stream: {event.data[:500]}")
        return None

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        content = await self._post(
            self._url("embeddings", request.model), self._body(request), self._headers
        )
        return self._parse(EmbeddingsResponse, content)


__all__ = ["OpenAIProvider"]
