"""Gateway variants for experiments: the real ``create_app`` with one thing changed.

Each factory builds the gateway as ``symbiosis serve`` does (same logging set-up, same
settings from the ``SYMBIOSIS_*`` environment) but injects a differently configured
``httpx.AsyncClient`` through ``create_app(http_client=...)``, or quiets one logger, so
``run.py --app variants:<name>`` measures exactly that change. They are for measuring
only: nothing here is how the product should be wired (``docs/benchmarks.md`` says
what should change in ``src/``).

    uv run --with httpx-aiohttp python bench/run.py --app variants:aiohttp_transport
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from symbiosis.exceptions import UpstreamError
from symbiosis.gateway import create_app
from symbiosis.providers._http import build_timeout
from symbiosis.providers.openai import OpenAIProvider
from symbiosis.settings import Settings
from symbiosis.wire import ChatCompletionChunk, ChatCompletionRequest


def _serve_like_logging(*, quiet_httpx: bool = False) -> None:
    """What ``symbiosis serve`` does: the root logger at ``SYMBIOSIS_LOG_LEVEL`` (INFO)."""
    level = Settings.from_env().log_level
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if quiet_httpx:
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _limits() -> httpx.Limits:
    """Pool limits from ``BENCH_MAX_CONNECTIONS`` / ``BENCH_MAX_KEEPALIVE`` (product defaults)."""
    return httpx.Limits(
        max_connections=int(os.environ.get("BENCH_MAX_CONNECTIONS", "512")),
        max_keepalive_connections=int(os.environ.get("BENCH_MAX_KEEPALIVE", "128")),
        keepalive_expiry=30.0,
    )


def baseline() -> FastAPI:
    """The gateway as ``symbiosis serve`` builds it (control for the variants below)."""
    _serve_like_logging()
    return create_app()


def quiet_httpx_log() -> FastAPI:
    """httpx's per-request ``INFO HTTP Request: POST ...`` line switched off."""
    _serve_like_logging(quiet_httpx=True)
    return create_app()


def httpx_pool() -> FastAPI:
    """An httpx client with the limits from the environment (see ``_limits``)."""
    _serve_like_logging(quiet_httpx=True)
    client = httpx.AsyncClient(timeout=build_timeout(600.0), limits=_limits())
    return create_app(http_client=client)


def aiohttp_transport() -> FastAPI:
    """httpx's interface over aiohttp's connection pool and C HTTP parser (httpx-aiohttp)."""
    from httpx_aiohttp import AiohttpTransport

    _serve_like_logging(quiet_httpx=True)
    transport = AiohttpTransport(limits=_limits())
    client = httpx.AsyncClient(transport=transport, timeout=build_timeout(600.0))
    return create_app(http_client=client)


async def _chat_stream_to_the_end(
    self: OpenAIProvider, request: ChatCompletionRequest
) -> AsyncIterator[ChatCompletionChunk]:
    """``OpenAIProvider.chat_stream`` that reads the body to its end after ``[DONE]``.

    The product's version returns on ``[DONE]``, before the chunked body's terminator
    has been read, so httpx closes the connection instead of pooling it: every stream
    then opens a new upstream connection (a TLS handshake, on a real provider).
    """
    body = self._body(request)
    body["stream"] = True
    body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    done = False
    async for event in self._post_events(
        self._url("chat/completions", request.model), body, self._headers
    ):
        data = event.data
        if done:
            continue
        if data == "[DONE]":
            done = True
            continue
        if event.event == "error" or data.startswith('{"error"'):
            raise UpstreamError(f"{self.name} failed mid-stream: {data[:500]}")
        yield self._parse(ChatCompletionChunk, data)


def streams_drained() -> FastAPI:
    """The product client, streams read to the end so their connection is reused."""
    OpenAIProvider.chat_stream = _chat_stream_to_the_end  # type: ignore[method-assign]
    return baseline()


def aiohttp_streams_drained() -> FastAPI:
    """The aiohttp transport and streams read to the end: both suggested fixes."""
    OpenAIProvider.chat_stream = _chat_stream_to_the_end  # type: ignore[method-assign]
    return aiohttp_transport()
