"""Connection facts shared by HTTP providers: pooled clients, timeouts and error mapping.

Upstream statuses become our errors in one table (``error_from_response``); httpx's
transport exceptions are translated in one place (``translate_transport_errors``), and
aiohttp's in ``aiohttp_error``. The native pool (``_h1``) raises these errors itself.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import httpx
import orjson

from ..exceptions import (
    InvalidRequestError,
    RateLimitError,
    RequestTooLargeError,
    SymbiosisError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

DEFAULT_TIMEOUT = 600.0
CONNECT_TIMEOUT = 10.0


def build_timeout(seconds: float) -> httpx.Timeout:
    """Read/write/pool bounded by the provider's ``timeout``; connecting gives up sooner."""
    return httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT))


TRANSPORT_ENV = "SYMBIOSIS_HTTP_TRANSPORT"
TRANSPORTS = ("native", "aiohttp", "httpx")
_LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=128, keepalive_expiry=30.0)


def selected_transport() -> str:
    """``SYMBIOSIS_HTTP_TRANSPORT``: how providers that own their client reach upstreams.

    ``native`` (default): the lean HTTP/1.1 pool of ``_h1``, the cheapest per request
    (docs/benchmarks.md, "HTTP client"); ``aiohttp``: aiohttp's pool through
    ``httpx-aiohttp``; ``httpx``: httpx's own transport (HTTP/2 servers, or tools that
    hook into httpx, such as pytest-httpx).
    """
    name = os.environ.get(TRANSPORT_ENV, "native").strip().lower() or "native"
    if name not in TRANSPORTS:
        raise ValueError(f"{TRANSPORT_ENV}={name!r}: expected one of {', '.join(TRANSPORTS)}")
    return name


def build_client(timeout: float = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    """The pooled client a provider owns when none is injected: keep-alive, HTTP/1.1.

    With the ``aiohttp`` transport it runs on aiohttp's connection pool
    (``httpx-aiohttp``); otherwise on httpx's own, which is also where the ``native``
    pool sends the URLs it leaves alone (proxied ones: httpx honours the proxy variables).
    """
    transport: httpx.AsyncBaseTransport | None = None
    if selected_transport() == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(limits=_LIMITS)
    return httpx.AsyncClient(
        transport=transport,
        timeout=build_timeout(timeout),
        limits=_LIMITS,
        follow_redirects=False,
    )


class Shortcut(Protocol):
    """A direct way to POST that bypasses httpx's request and response objects."""

    def serves(self, url: str) -> bool:
        """False for a URL that must take the httpx client (a proxy is configured...)."""
        ...

    async def post(
        self, provider: str, url: str, content: bytes, headers: Mapping[str, str]
    ) -> bytes: ...

    def stream(
        self, provider: str, url: str, content: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@contextmanager
def translate_transport_errors(provider: str) -> Iterator[None]:
    """Map httpx's connection failures to the gateway's 502/503/504 errors."""
    try:
        yield
    except httpx.TransportError as exc:
        raise (_from_aiohttp(provider, exc) or _from_httpx(provider, exc)) from exc


def _from_httpx(provider: str, exc: httpx.TransportError) -> SymbiosisError:
    if isinstance(exc, httpx.ConnectTimeout):
        return UpstreamUnavailableError(f"{provider}: could not connect in time")
    if isinstance(exc, httpx.PoolTimeout):
        return UpstreamUnavailableError(f"{provider}: too many requests in flight")
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeoutError(f"{provider}: upstream did not answer in time")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamUnavailableError(f"{provider}: upstream unreachable ({exc})")
    return UpstreamError(f"{provider}: connection to upstream failed ({exc!r})")


def _from_aiohttp(provider: str, exc: httpx.TransportError) -> SymbiosisError | None:
    """httpx-aiohttp maps a reset connection to ``ConnectTimeout``; tell them apart."""
    cause = exc.__cause__
    if cause is None or type(cause).__module__.split(".")[0] != "aiohttp":
        return None
    return aiohttp_error(provider, cause)


def aiohttp_error(provider: str, cause: BaseException) -> SymbiosisError:
    """The gateway error for an aiohttp client failure."""
    import aiohttp

    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return UpstreamUnavailableError(f"{provider}: could not connect in time")
    if isinstance(cause, aiohttp.ClientConnectorError):
        return UpstreamUnavailableError(f"{provider}: upstream unreachable ({cause})")
    if isinstance(cause, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeoutError(f"{provider}: upstream did not answer in time")
    return UpstreamError(f"{provider}: connection to upstream failed ({cause!r})")


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``retry-after`` seconds or an HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _upstream_error_fields(body: bytes) -> tuple[str | None, str | None, str | None]:
    """Message, param and code of an OpenAI- or Anthropic-shaped error body."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", errors="replace").strip()
        return (text[:500] or None), None, None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        return (
            str(message) if message is not None else None,
            error.get("param") if isinstance(error.get("param"), str) else None,
            error.get("code") if isinstance(error.get("code"), str) else None,
        )
    if isinstance(error, str):
        return error, None, None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"], None, None
    return None, None, None


def error_from_response(
    provider: str, status: int, body: bytes, headers: Mapping[str, str]
) -> SymbiosisError:
    """The one table from an upstream HTTP failure to the error the client sees."""
    message, param, code = _upstream_error_fields(body)
    detail = message or f"HTTP {status}"
    retry_after = parse_retry_after(headers)
    if status in (400, 422):
        return InvalidRequestError(detail, param=param, code=code)
    if status == 413:
        return RequestTooLargeError(f"{provider}: {detail}")
    if status in (401, 403):
        return UpstreamError(
            f"{provider} refused the gateway's credentials ({status}: {detail}); "
            "this is a gateway configuration problem, not your API key"
        )
    if status == 429:
        return RateLimitError(f"{provider}: {detail}", retry_after=retry_after)
    if status in (502, 503, 529):
        return UpstreamUnavailableError(
            f"{provider} is unavailable ({status}: {detail})", retry_after=retry_after
        )
    if status in (408, 504):
        return UpstreamTimeoutError(f"{provider} timed out ({status}: {detail})")
    return UpstreamError(f"{provider} answered {status}: {detail}")
