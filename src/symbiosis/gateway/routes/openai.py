"""The OpenAI-compatible API: chat completions (JSON and SSE), embeddings, models.

Each model call is metered: admitted by rate limits and budget before it is sent,
priced and logged after. A JSON answer carries its cost in ``x-symbiosis-cost``; a
stream ends with an SSE comment carrying it (``: x-symbiosis-cost=…``), since its
headers left before the cost was known.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from time import perf_counter
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ...exceptions import SymbiosisError
from ...middleware import authorize_model, key_of
from ...providers.relay import ChunkRelayCapable, CompletionRelayCapable, RelayedChunk, offers
from ...services.metering import Ticket, format_cost
from ...services.routing import Deployment
from ...wire import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
    ModelCard,
    ModelList,
    Usage,
)
from .._calls import COST_HEADER, aimed_at, first_available, metered_headers
from .._dispatch import Call, FinalFrame, JSONReply, ModelRoute, Reply, StreamReply
from .._openapi import DocumentedRoute
from .._parsing import parse_request
from .._responses import SSE_DONE, json_bytes, json_response, sse_data, sse_error, sse_frame
from ..runtime import Gateway

log = logging.getLogger("symbiosis.gateway")

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def openai_routes(gateway: Gateway) -> list[ModelRoute]:
    """``POST /v1/chat/completions`` and ``POST /v1/embeddings``, served by ``ModelDispatch``."""
    models = gateway.router
    metering = gateway.metering
    redact = gateway.redactor

    async def chat_completions(call: Call) -> Reply:
        body = call.body
        chat = parse_request(ChatCompletionRequest, body)
        authorize_model(call.scope, chat.model, models)
        candidates = models.candidates(chat.model)
        event = call.record(chat.model, stream=bool(chat.stream), user=chat.user)
        if redact is not None:
            event.request_body = redact(body)
        ticket = await metering.begin(
            call.key,
            candidates[0],
            event,
            prompt_bytes=len(body),
            max_output=chat.max_completion_tokens or chat.max_tokens,
        )
        if chat.stream:
            return await _stream(chat, candidates, ticket)
        deployment = None
        try:
            deployment, (content, usage) = await first_available(
                candidates, lambda d: _complete(d, chat)
            )
        except SymbiosisError as exc:
            metering.fail(ticket, deployment, exc)
            raise
        if redact is not None:
            event.response_body = redact(content)
        cost = metering.finish(ticket, deployment, usage)
        return JSONReply(content, metered_headers(ticket, cost))

    async def _complete(d: Deployment, chat: ChatCompletionRequest) -> tuple[bytes, Usage | None]:
        """The answer's bytes and usage: relayed from OpenAI-style upstreams, else encoded."""
        provider = d.provider
        if offers(provider, CompletionRelayCapable):
            relayed = await provider.chat_relay(aimed_at(chat, d))
            return relayed.data, relayed.usage
        completion = await provider.chat(aimed_at(chat, d))
        return json_bytes(completion), completion.usage

    async def _stream(
        chat: ChatCompletionRequest, candidates: list[Deployment], ticket: Ticket
    ) -> Reply:
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)
        event = ticket.event

        async def open_stream(d: Deployment) -> tuple[AsyncIterator[Any], Any]:
            # OpenAI-style upstreams are relayed byte for byte; others are re-encoded.
            # Either way, what one upstream read brought leaves in one write.
            if offers(d.provider, ChunkRelayCapable):
                chunks: AsyncIterator[Any] = d.provider.chat_stream_relay(aimed_at(chat, d))
            else:
                chunks = d.provider.chat_stream_groups(aimed_at(chat, d))
            try:
                return chunks, await anext(chunks)
            except StopAsyncIteration:
                return chunks, None

        try:
            deployment, (chunks, first) = await first_available(candidates, open_stream)
        except SymbiosisError as exc:
            metering.fail(ticket, None, exc)
            raise
        event.ttft_ms = (perf_counter() - ticket.started) * 1000
        usage = None
        ending = False  # the usage-only chunk came: only [DONE] follows

        def frame(group: list[RelayedChunk] | list[ChatCompletionChunk]) -> bytes | None:
            """One write for the chunks one upstream read brought."""
            nonlocal usage, ending
            out = []
            for chunk in group:
                drop_usage = False
                if chunk.usage is not None:
                    usage = chunk.usage
                    ending = not _has_choices(chunk)
                    if not include_usage:
                        if ending:
                            continue
                        drop_usage = True
                out.append(_chunk_frame(chunk, drop_usage))
            return b"".join(out) if out else None

        held = b""  # what follows the usage chunk leaves in the response's last write

        def to_send(chunk: Any) -> bytes | None:
            nonlocal held
            data = frame(chunk)
            if data and ending:
                held += data
                return None
            return data

        async def frames() -> AsyncIterator[bytes]:
            nonlocal held
            done = False
            try:
                if first is not None and (data := to_send(first)):
                    yield data
                async for chunk in chunks:
                    if data := to_send(chunk):
                        yield data
                done = True
                cost = metering.finish(ticket, deployment, usage)
                if (text := format_cost(cost)) is not None:
                    held += f": {COST_HEADER}={text}\n\n".encode()
                yield FinalFrame(held + SSE_DONE)
            except SymbiosisError as exc:
                done = True
                metering.fail(ticket, deployment, exc, usage)
                yield FinalFrame(sse_error(exc))
            except Exception:
                done = True
                log.exception("stream %s failed", event.request_id)
                exc = SymbiosisError(f"internal error (request id {event.request_id})")
                metering.fail(ticket, deployment, exc, usage)
                yield FinalFrame(sse_error(exc))
            finally:
                await chunks.aclose()  # type: ignore[attr-defined]
                if not done:  # the client went away: bill what the upstream reported
                    event.status, event.error_type = 499, "client_closed_request"
                    metering.finish(ticket, deployment, usage)

        return StreamReply(frames(), {**_SSE_HEADERS, **ticket.headers})

    async def embeddings(call: Call) -> Reply:
        body = call.body
        embed = parse_request(EmbeddingsRequest, body)
        authorize_model(call.scope, embed.model, models)
        candidates = models.candidates(embed.model)
        event = call.record(embed.model, stream=False, user=embed.user)
        ticket = await metering.begin(
            call.key, candidates[0], event, prompt_bytes=len(body), max_output=0
        )
        deployment = None
        try:
            deployment, result = await first_available(
                candidates,
                lambda d: d.provider.embeddings(aimed_at(embed, d)),
            )
        except SymbiosisError as exc:
            metering.fail(ticket, deployment, exc)
            raise
        usage = None
        if result.usage is not None:
            usage = Usage(
                prompt_tokens=result.usage.prompt_tokens, total_tokens=result.usage.total_tokens
            )
        cost = metering.finish(ticket, deployment, usage)
        return JSONReply(json_bytes(result), metered_headers(ticket, cost))

    return [
        ModelRoute("/v1/chat/completions", chat_completions),
        ModelRoute("/v1/embeddings", embeddings),
    ]


OPENAI_DOCS = (
    DocumentedRoute(
        "/v1/chat/completions",
        "Create a chat completion (JSON or SSE stream)",
        ChatCompletionRequest,
        ChatCompletion,
        "OpenAI-compatible",
    ),
    DocumentedRoute(
        "/v1/embeddings",
        "Create embeddings",
        EmbeddingsRequest,
        EmbeddingsResponse,
        "OpenAI-compatible",
    ),
)


def openai_router(gateway: Gateway) -> APIRouter:
    """The OpenAI-compatible routes that are not model calls."""
    router = APIRouter(tags=["OpenAI-compatible"])
    models = gateway.router

    @router.get("/v1/models", response_model=ModelList, summary="List the models you may use")
    async def list_models(request: Request) -> Response:
        key = key_of(request.scope)
        names = [n for n in models.model_names if key is None or key.allows(n)]
        return json_response(ModelList(data=[ModelCard(id=name) for name in names]))

    return router


def _has_choices(chunk: RelayedChunk | ChatCompletionChunk) -> bool:
    return chunk.has_choices if isinstance(chunk, RelayedChunk) else bool(chunk.choices)


def _chunk_frame(chunk: RelayedChunk | ChatCompletionChunk, drop_usage: bool) -> bytes:
    """The chunk's SSE frame: a relayed chunk's own bytes, a typed chunk encoded."""
    if isinstance(chunk, RelayedChunk):
        if drop_usage:
            return sse_data(orjson.dumps({**chunk.payload, "usage": None}))
        return sse_data(chunk.data)
    return sse_frame(chunk.model_copy(update={"usage": None}) if drop_usage else chunk)
