"""Connection facts shared by HTTP providers: pooled clients, timeouts and error mapping.

Upstream statuses become our errors in one table (``error_from_response``); httpx's
transport exceptions are translated in one place (``translate_transport_errors``).
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

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
_LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=128, keepalive_expiry=30.0)


def build_client(timeout: float = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    """The pooled client a provider owns when none is injected: keep-alive, HTTP/1.1.

    Requests go through aiohttp's connection pool (``httpx-aiohttp``), which costs
    about half the CPU of httpx's own per request (docs/benchmarks.md);
    ``SYMBIOSIS_HTTP_TRANSPORT=httpx`` selects httpx's transport instead (HTTP/2 servers,
    or tools that hook into it).
    """
    transport: httpx.AsyncBaseTransport | None = None
    if os.environ.get(TRANSPORT_ENV, "aiohttp") == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(limits=_LIMITS)
    return httpx.AsyncClient(
        transport=transport,
        timeout=build_timeout(timeout),
        limits=_LIMITS,
        follow_redirects=False,
    )


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
