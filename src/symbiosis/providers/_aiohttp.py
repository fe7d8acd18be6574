"""The short way to aiohttp's pool, when a provider's httpx client runs on it.

Used with ``SYMBIOSIS_HTTP_TRANSPORT=aiohttp``, or an injected client on that transport;
the default is the native pool of ``_h1``, cheaper still (docs/benchmarks.md).

``build_client`` gives providers an ``httpx.AsyncClient`` over ``httpx-aiohttp``'s
transport. httpx's own request and response objects around that transport cost about a
sixth of the gateway's CPU per request (docs/benchmarks.md), so providers talk to the
transport's ``aiohttp.ClientSession`` directly: same pool, same limits and timeouts.
A client with any other transport (injected, mocked) keeps the httpx path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from ._http import CONNECT_TIMEOUT, aiohttp_error, error_from_response


class AiohttpShortcut:
    """POSTs through the ``aiohttp.ClientSession`` of an ``AiohttpTransport``."""

    def __init__(self, transport: Any, timeout: float) -> None:
        import aiohttp

        self._transport = transport
        self._errors: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError)
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=min(timeout, CONNECT_TIMEOUT), sock_read=timeout
        )

    def _session(self) -> Any:
        from aiohttp import ClientSession

        transport = self._transport
        if not isinstance(transport.client, ClientSession):
            transport.client = transport.get_client()
        return transport.client

    def serves(self, url: str) -> bool:
        """Every URL: the session is the one the provider's httpx client uses anyway."""
        return True

    async def aclose(self) -> None:
        """Nothing: the session belongs to the httpx client, which closes it."""

    @contextmanager
    def _translated(self, provider: str) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise aiohttp_error(provider, exc) from exc

    async def post(
        self, provider: str, url: str, content: bytes, headers: Mapping[str, str]
    ) -> bytes:
        """The response body; an upstream failure raises the mapped gateway error."""
        with self._translated(provider):
            async with self._session().post(
                url, data=content, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                body = await response.read()
        if response.status >= 400:
            raise error_from_response(provider, response.status, body, response.headers)
        return body

    async def stream(
        self, provider: str, url: str, content: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[bytes]:
        """The response body piece by piece, as it arrives."""
        with self._translated(provider):
            async with self._session().post(
                url, data=content, headers=headers, timeout=self._timeout, allow_redirects=False
            ) as response:
                if response.status >= 400:
                    body = await response.read()
                    raise error_from_response(provider, response.status, body, response.headers)
                async for piece in response.content.iter_any():
                    yield piece


def shortcut_for(client: httpx.AsyncClient, timeout: float) -> AiohttpShortcut | None:
    """The shortcut when ``client`` runs on ``httpx-aiohttp``, else None."""
    transport = getattr(client, "_transport", None)
    if type(transport).__name__ != "AiohttpTransport":
        return None
    return AiohttpShortcut(transport, timeout)
