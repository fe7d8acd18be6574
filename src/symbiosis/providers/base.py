"""The provider interface: typed OpenAI-shaped requests in, typed responses or chunks out.

Providers know httpx and the wire types, nothing of keys, budgets or the database.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any, ClassVar, Protocol, Self, TypeVar, runtime_checkable

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from ..exceptions import InvalidRequestError, UpstreamError
from ..wire import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
)
from ..wire.anthropic import AnthropicMessage, MessagesRequest
from ._aiohttp import shortcut_for
from ._h1 import H1Pool
from ._http import (
    DEFAULT_TIMEOUT,
    Shortcut,
    build_client,
    error_from_response,
    selected_transport,
    translate_transport_errors,
)
from ._sse import ServerSentEvent, iter_sse
from .relay import ChunkRelayCapable, RelayedChunk, groups_of_one

M = TypeVar("M", bound=BaseModel)


class Provider(ABC):
    """One upstream service. Subclasses set ``type`` and implement the calls they support.

    ``chat_stream`` always asks the upstream for usage, so the last chunk it yields
    carries token counts; the caller decides whether to show that chunk.
    """

    type: ClassVar[str]

    @abstractmethod
    async def chat(self, request: ChatCompletionRequest) -> ChatCompletion: ...

    @abstractmethod
    def chat_stream(self, request: ChatCompletionRequest) -> AsyncIterator[ChatCompletionChunk]:
        """An async iterator of chunks; the upstream call starts on the first ``anext``."""

    async def chat_stream_groups(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[list[ChatCompletionChunk]]:
        """``chat_stream`` in the groups one upstream read brought, so that a gateway
        writes each group to its client at once.

        This default makes groups of one. A provider that reads the upstream's bytes
        itself overrides it, and then builds ``chat_stream`` on it.
        """
        async with aclosing(groups_of_one(self.chat_stream(request))) as groups:
            async for group in groups:
                yield group

    async def embeddings(self, request: EmbeddingsRequest) -> EmbeddingsResponse:
        raise InvalidRequestError(f"provider type {self.type!r} does not serve embeddings")

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections the provider owns."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class HTTPProvider(Provider):
    """A provider speaking JSON over HTTP.

    Pass ``http_client`` to share or mock the transport: every call then goes through
    that ``httpx.AsyncClient``. Otherwise the provider owns its connections and closes
    them in ``aclose``: a lean HTTP/1.1 keep-alive pool (``_h1``) by default, or the
    transport ``SYMBIOSIS_HTTP_TRANSPORT`` names. The ``timeout`` applies per request
    either way.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or self.type
        self.timeout = float(timeout)
        self._owns_client = http_client is None
        self._client = http_client or build_client(self.timeout)
        # An injected client is used as given (pytest-httpx, custom transports).
        self._shortcut: Shortcut | None = (
            H1Pool(self.timeout)
            if self._owns_client and selected_transport() == "native"
            else shortcut_for(self._client, self.timeout)
        )

    async def aclose(self) -> None:
        if self._owns_client:
            if self._shortcut is not None:
                await self._shortcut.aclose()
            await self._client.aclose()

    async def _post(self, url: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> bytes:
        shortcut = self._shortcut
        if shortcut is not None and shortcut.serves(url):
            return await shortcut.post(self.name, url, orjson.dumps(body), headers)
        with translate_transport_errors(self.name):
            response = await self._client.post(
                url, content=orjson.dumps(body), headers=headers, timeout=self.timeout
            )
        if response.status_code >= 400:
            raise error_from_response(
                self.name, response.status_code, response.content, response.headers
            )
        return response.content

    async def _post_stream(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> AsyncIterator[bytes]:
        """The response body piece by piece, as it arrives; an HTTP error is raised first."""
        shortcut = self._shortcut
        if shortcut is not None and shortcut.serves(url):
            pieces = shortcut.stream(self.name, url, orjson.dumps(body), headers)
            async with aclosing(pieces):
                async for piece in pieces:
                    yield piece
            return
        request = self._client.build_request(
            "POST", url, content=orjson.dumps(body), headers=headers, timeout=self.timeout
        )
        with translate_transport_errors(self.name):
            response = await self._client.send(request, stream=True)
            try:
                if response.status_code >= 400:
                    content = await response.aread()
                    raise error_from_response(
                        self.name, response.status_code, content, response.headers
                    )
                async for piece in response.aiter_bytes():
                    yield piece
            finally:
                await response.aclose()

    async def _post_events(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> AsyncIterator[ServerSentEvent]:
        """Yield upstream server-sent events one by one, as their bytes arrive."""
        async with aclosing(self._post_stream(url, body, headers)) as pieces:
            async for event in iter_sse(pieces):
                yield event

    def _parse(self, model: type[M], data: bytes | str | dict[str, Any]) -> M:
        """Validate an upstream payload (its JSON, or that JSON already parsed); garbage
        from upstream is a 502, not a crash."""
        try:
            if isinstance(data, dict):
                return model.model_validate(data)
            return model.model_validate_json(data)
        except ValidationError as exc:
            raise UpstreamError(
                f"{self.name} sent a malformed {model.__name__}: "
                f"{exc.errors(include_url=False)[0]['msg']}"
            ) from exc


@runtime_checkable
class MessagesCapable(Protocol):
    """A provider that speaks the Anthropic Messages API natively.

    The gateway's ``POST /v1/messages`` passes requests for such a provider through
    untranslated (``isinstance(provider, MessagesCapable)``); any other provider is
    reached through ``chat`` / ``chat_stream`` and a translation. ``betas`` are the
    client's ``anthropic-beta`` features.
    """

    async def messages(
        self, request: MessagesRequest, *, betas: Sequence[str] = ()
    ) -> AnthropicMessage: ...

    def messages_stream(
        self, request: MessagesRequest, *, betas: Sequence[str] = ()
    ) -> AsyncIterator[ServerSentEvent]:
        """The upstream's events as they arrive; an ``error`` event is raised as our error."""
        ...


__all__ = [
    "ChunkRelayCapable",
    "HTTPProvider",
    "MessagesCapable",
    "Provider",
    "RelayedChunk",
]
