"""Connection facts and orchestration for Anthropic's Messages API.

Translation lives in ``_convert`` (request and response) and ``_stream`` (events);
this module only knows the URL, the headers and which translation to call. The
``messages`` methods speak the Messages API natively, with no translation at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import ClassVar

import httpx
import orjson

from ...exceptions import SymbiosisError, UpstreamError
from ...wire import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from ...wire.anthropic import AnthropicMessage, MessagesRequest
from .._http import DEFAULT_TIMEOUT
from .._sse import ServerSentEvent, iter_sse_groups
from ..base import HTTPProvider
from ._convert import to_anthropic, to_chat_completion
from ._stream import StreamTranslator, stream_error

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_API_VERSION = "2023-06-01"


class AnthropicProvider(HTTPProvider):
    """Claude models through the Messages API, spoken to in the OpenAI chat format.

    ``base_url`` is the host root, as in the Anthropic SDK (requests go to
    ``{base_url}/v1/messages``). Anthropic requires ``max_tokens``; requests that set
    neither ``max_tokens`` nor ``max_completion_tokens`` get ``default_max_tokens``.
    Embeddings are not offered (the base class answers 400).

    ``messages`` and ``messages_stream`` pass Anthropic-shaped requests through
    untranslated (the gateway's ``POST /v1/messages``): this provider is
    ``MessagesCapable``, and ``MessagesRelayCapable`` for streams relayed in groups.
    """

    type: ClassVar[str] = "anthropic"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        anthropic_version: str = DEFAULT_API_VERSION,
        default_max_tokens: int = 4096,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(timeout=timeout, http_client=http_client, name=name)
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.default_max_tokens = int(default_max_tokens)
        self._url = f"{self.base_url}/v1/messages"
        self._headers = {
            "content-type": "application/json",
            "anthropic-version": anthropic_version,
            **(headers or {}),
        }
        if api_key:
            self._headers["x-api-key"] = api_key

    async def chat(self, request: ChatCompletionRequest) -> ChatCompletion:
        body = to_anthropic(request, default_max_tokens=self.default_max_tokens)
        content = await self._post(self._url, body, self._headers)
        return to_chat_completion(self._parse(AnthropicMessage, content), self.name)

    async def chat_stream(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunk]:
        async with aclosing(self.chat_stream_groups(request)) as groups:
            async for group in groups:
                for chunk in group:
                    yield chunk

    async def chat_stream_groups(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[list[ChatCompletionChunk]]:
        """The translated chunks, in the groups one upstream read brought; the chunks
        before a failure are yielded before it is raised."""
        body = to_anthropic(request, default_max_tokens=self.default_max_tokens)
        body["stream"] = True
        translator = StreamTranslator(self.name)
        pieces = self._post_stream(self._url, body, self._headers)
        async with aclosing(iter_sse_groups(pieces)) as groups:
            async for events in groups:
                if translator.done:  # read to the end of the body, so the connection is reused
                    continue
                group: list[ChatCompletionChunk] = []
                try:
                    for event in events:
                        if translator.done:
                            break
                        group += translator.feed(event.data)
                except SymbiosisError:
                    if group:
                        yield group
                    raise
                if group:
                    yield group
        if not translator.done:
            raise UpstreamError(f"{self.name} ended the stream before message_stop")

    async def messages(
        self, request: MessagesRequest, *, betas: Sequence[str] = ()
    ) -> AnthropicMessage:
        """The upstream's message for ``request``, sent as it is (``stream`` left out)."""
        body = request.wire_body()
        body.pop("stream", None)
        content = await self._post(self._url, body, self._headers_with(betas))
        return self._parse(AnthropicMessage, content)

    async def messages_stream(
        self, request: MessagesRequest, *, betas: Sequence[str] = ()
    ) -> AsyncIterator[ServerSentEvent]:
        """The upstream's events, each yielded as it arrives, up to ``message_stop``.

        An ``error`` event is raised as the matching ``SymbiosisError``; a stream that
        ends before ``message_stop`` is a 502.
        """
        async with aclosing(self.messages_stream_relay(request, betas=betas)) as groups:
            async for group in groups:
                for event in group:
                    yield event

    async def messages_stream_relay(
        self, request: MessagesRequest, *, betas: Sequence[str] = ()
    ) -> AsyncIterator[list[ServerSentEvent]]:
        """``messages_stream`` in the groups one upstream read brought the events in.

        The events before an ``error`` event are yielded before it is raised.
        """
        body = request.wire_body(stream=True)
        pieces = self._post_stream(self._url, body, self._headers_with(betas))
        stopped = False
        async with aclosing(iter_sse_groups(pieces)) as groups:
            async for events in groups:
                if stopped:  # read to the end of the body, so the connection is reused
                    continue
                group, stopped, error = self._up_to_stop(events)
                if group:
                    yield group
                if error is not None:
                    raise error
        if not stopped:
            raise UpstreamError(f"{self.name} ended the stream before message_stop")

    def _up_to_stop(
        self, events: list[ServerSentEvent]
    ) -> tuple[list[ServerSentEvent], bool, SymbiosisError | None]:
        """The events up to ``message_stop`` or an ``error`` event, whether the stop
        came, and the error that event is."""
        for i, event in enumerate(events):
            kind = event.event
            if kind == "message_stop":
                return events[: i + 1], True, None
            if kind == "error":
                return events[:i], False, stream_error(self.name, _error_object(event.data))
        return events, False, None

    def _headers_with(self, betas: Sequence[str]) -> Mapping[str, str]:
        """Our headers, with the client's ``anthropic-beta`` features added to ours."""
        if not betas:
            return self._headers
        configured = self._headers.get("anthropic-beta", "")
        features = [f for f in configured.split(",") if f.strip()]
        features += [f for f in betas if f not in features]
        return {**self._headers, "anthropic-beta": ",".join(features)}


def _error_object(data: str) -> object:
    try:
        return orjson.loads(data).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return {"type": "api_error", "message": data[:500]}


__all__ = ["DEFAULT_API_VERSION", "DEFAULT_BASE_URL", "AnthropicProvider"]
