"""The OpenAI-compatible API: chat completions (JSON and SSE), embeddings, models."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from time import perf_counter
from typing import TypeVar

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ...exceptions import RateLimitError, SymbiosisError, UpstreamUnavailableError
from ...middleware import authorize_model, key_of, request_id_of
from ...services.routing import Deployment
from ...services.usage import UsageEvent
from ...wire import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
    ModelCard,
    ModelList,
)
from .._openapi import body_schema
from .._parsing import parse_request, read_body
from .._responses import SSE_DONE, json_response, sse_error, sse_frame
from ..runtime import Gateway

log = logging.getLogger("symbiosis.gateway")
T = TypeVar("T")

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_FALLBACK_ON = (UpstreamUnavailableError, RateLimitError)


async def _first_available(
    candidates: list[Deployment], call: Callable[[Deployment], Awaitable[T]]
) -> tuple[Deployment, T]:
    """Try each deployment of a group in turn while the upstream is overloaded or down."""
    last = len(candidates) - 1
    for index, deployment in enumerate(candidates):
        try:
            return deployment, await call(deployment)
        except _FALLBACK_ON:
            if index == last:
                raise
            log.warning("deployment %s unavailable, trying the next", deployment.provider_name)
    raise AssertionError("candidates is never empty")  # pragma: no cover


def _fail(event: UsageEvent, exc: SymbiosisError) -> None:
    event.status = exc.status_code
    event.error_type = exc.error_type


def openai_router(gateway: Gateway) -> APIRouter:
    router = APIRouter(tags=["OpenAI-compatible"])
    limit = gateway.settings.max_request_bytes
    models = gateway.router
    recorder = gateway.usage

    def finish(event: UsageEvent, started: float, deployment: Deployment | None) -> None:
        event.latency_ms = (perf_counter() - started) * 1000
        if deployment is not None:
            event.provider = deployment.provider_name
            event.upstream_model = deployment.upstream_model
        recorder.record(event)

    @router.post(
        "/v1/chat/completions",
        openapi_extra=body_schema(ChatCompletionRequest),
        responses={200: {"model": ChatCompletion}},
        summary="Create a chat completion (JSON or SSE stream)",
    )
    async def chat_completions(request: Request) -> Response:
        started = perf_counter()
        chat = parse_request(ChatCompletionRequest, await read_body(request, limit))
        authorize_model(request.scope, chat.model, models)
        event = UsageEvent(request_id_of(request.scope), chat.model, stream=bool(chat.stream))
        candidates = models.candidates(chat.model)
        if chat.stream:
            return await _stream(chat, candidates, event, started)
        deployment = None
        try:
            deployment, completion = await _first_available(
                candidates,
                lambda d: d.provider.chat(chat.model_copy(update={"model": d.upstream_model})),
            )
        except SymbiosisError as exc:
            _fail(event, exc)
            finish(event, started, deployment)
            raise
        event.add_usage(completion.usage)
        finish(event, started, deployment)
        return json_response(completion)

    async def _stream(
        chat: ChatCompletionRequest,
        candidates: list[Deployment],
        event: UsageEvent,
        started: float,
    ) -> Response:
        include_usage = bool(chat.stream_options and chat.stream_options.include_usage)

        async def open_stream(
            d: Deployment,
        ) -> tuple[AsyncIterator[ChatCompletionChunk], ChatCompletionChunk | None]:
            chunks = d.provider.chat_stream(chat.model_copy(update={"model": d.upstream_model}))
            try:
                return chunks, await anext(chunks)
            except StopAsyncIteration:
                return chunks, None

        try:
            deployment, (chunks, first) = await _first_available(candidates, open_stream)
        except SymbiosisError as exc:
            _fail(event, exc)
            finish(event, started, None)
            raise
        event.ttft_ms = (perf_counter() - started) * 1000

        def frame(chunk: ChatCompletionChunk) -> bytes | None:
            if chunk.usage is not None:
                event.add_usage(chunk.usage)
                if not include_usage and not chunk.choices:
                    return None
            return sse_frame(chunk)

        async def frames() -> AsyncIterator[bytes]:
            done = False
            try:
                if first is not None and (data := frame(first)):
                    yield data
                async for chunk in chunks:
                    if data := frame(chunk):
                        yield data
                done = True
                yield SSE_DONE
            except SymbiosisError as exc:
                done = True
                _fail(event, exc)
                yield sse_error(exc)
            except Exception:
                done = True
                log.exception("stream %s failed", event.request_id)
                exc = SymbiosisError(f"internal error (request id {event.request_id})")
                _fail(event, exc)
                yield sse_error(exc)
            finally:
                if not done:
                    event.status, event.error_type = 499, "client_closed_request"
                await chunks.aclose()  # type: ignore[attr-defined]
                finish(event, started, deployment)

        return StreamingResponse(frames(), media_type="text/event-stream", headers=_SSE_HEADERS)

    @router.post(
        "/v1/embeddings",
        openapi_extra=body_schema(EmbeddingsRequest),
        responses={200: {"model": EmbeddingsResponse}},
        summary="Create embeddings",
    )
    async def embeddings(request: Request) -> Response:
        started = perf_counter()
        embed = parse_request(EmbeddingsRequest, await read_body(request, limit))
        authorize_model(request.scope, embed.model, models)
        event = UsageEvent(request_id_of(request.scope), embed.model)
        deployment = None
        try:
            deployment, result = await _first_available(
                models.candidates(embed.model),
                lambda d: d.provider.embeddings(
                    embed.model_copy(update={"model": d.upstream_model})
                ),
            )
        except SymbiosisError as exc:
            _fail(event, exc)
            finish(event, started, deployment)
            raise
        if result.usage is not None:
            event.input_tokens = result.usage.prompt_tokens
        finish(event, started, deployment)
        return json_response(result)

    @router.get("/v1/models", response_model=ModelList, summary="List the models you may use")
    async def list_models(request: Request) -> Response:
        key = key_of(request.scope)
        names = [n for n in models.model_names if key is None or key.allows(n)]
        return json_response(ModelList(data=[ModelCard(id=name) for name in names]))

    return router
