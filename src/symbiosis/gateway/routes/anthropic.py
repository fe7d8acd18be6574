"""The Anthropic-compatible API: ``POST /v1/messages`` (JSON and SSE).

A deployment whose provider is ``MessagesCapable`` gets the request natively (only
``model`` replaced) and its events are relayed as they arrive; any other deployment
is reached through chat completions and ``wire.messages_bridge``. Errors use
Anthropic's shape with the statuses of the OpenAI-compatible API, so the Anthropic
SDKs raise their matching exception classes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from time import perf_counter
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

from ...exceptions import SymbiosisError
from ...middleware import authorize_model
from ...providers.base import MessagesCapable
from ...providers.relay import MessagesRelayCapable, groups_of_one, offers
from ...services.metering import Ticket, format_cost
from ...services.routing import Deployment
from ...wire import ChatCompletionChunk, ChatCompletionRequest, Usage
from ...wire.anthropic import (
    AnthropicErrorResponse,
    AnthropicMessage,
    MessagesRequest,
    StreamUsage,
    dump_json,
)
from ...wire.messages_bridge import MessagesStreamWriter, to_anthropic_message, to_chat_request
from .._calls import COST_HEADER, aimed_at, first_available, metered_headers
from .._dispatch import Call, FinalFrame, JSONReply, ModelRoute, Reply, StreamReply
from .._openapi import DocumentedRoute
from .._parsing import parse_request
from ..runtime import Gateway

if TYPE_CHECKING:
    from ...providers._sse import ServerSentEvent

log = logging.getLogger("symbiosis.gateway")
T = TypeVar("T")

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def anthropic_routes(gateway: Gateway) -> list[ModelRoute]:
    """``POST /v1/messages``, served by ``ModelDispatch`` with Anthropic-shaped errors."""
    models = gateway.router
    metering = gateway.metering

    async def messages(call: Call) -> Reply:
        request_id = call.request_id
        raw = call.body
        body = parse_request(MessagesRequest, raw)
        authorize_model(call.scope, body.model, models)
        candidates = models.candidates(body.model)
        user = body.metadata.user_id if body.metadata is not None else None
        event = call.record(body.model, stream=bool(body.stream), user=user)
        ticket = await metering.begin(
            call.key,
            candidates[0],
            event,
            prompt_bytes=len(raw),
            max_output=body.max_tokens,
        )
        forward = _Forward(body, _betas(call))
        deployment = None
        try:
            if body.stream:
                return await _stream(forward, candidates, ticket)
            deployment, (message, usage) = await first_available(candidates, forward.complete)
        except Exception as exc:
            error = _as_symbiosis_error(exc, request_id)
            metering.fail(ticket, deployment, error)
            raise error from exc
        cost = metering.finish(ticket, deployment, usage)
        return JSONReply(
            dump_json(message), {**metered_headers(ticket, cost), "request-id": request_id}
        )

    async def _stream(forward: _Forward, candidates: list[Deployment], ticket: Ticket) -> Reply:
        event = ticket.event
        usage = _UsageBox()
        deployment, (frames, first) = await first_available(
            candidates, lambda d: forward.open_stream(d, usage)
        )
        event.ttft_ms = (perf_counter() - ticket.started) * 1000

        async def relay() -> AsyncIterator[bytes]:
            done = False
            try:
                if first is not None:
                    yield first
                async for frame in frames:
                    yield frame
                done = True
                cost = metering.finish(ticket, deployment, usage.value)
                if (text := format_cost(cost)) is not None:
                    yield FinalFrame(f": {COST_HEADER}={text}\n\n".encode())
            except Exception as exc:
                done = True
                error = _as_symbiosis_error(exc, event.request_id)
                metering.fail(ticket, deployment, error, usage.value)
                yield FinalFrame(
                    _event_frame(AnthropicErrorResponse.from_exception(error, event.request_id))
                )
            finally:
                await frames.aclose()  # type: ignore[attr-defined]
                if not done:  # the client went away: bill what the upstream reported
                    event.status, event.error_type = 499, "client_closed_request"
                    metering.finish(ticket, deployment, usage.value)

        headers = {**_SSE_HEADERS, **ticket.headers, "request-id": event.request_id}
        return StreamReply(relay(), headers)

    return [ModelRoute("/v1/messages", messages, anthropic_error)]


MESSAGES_DOCS = DocumentedRoute(
    "/v1/messages",
    "Create a message, Anthropic-compatible (JSON or SSE stream)",
    MessagesRequest,
    AnthropicMessage,
    "Anthropic-compatible",
)


def anthropic_error(exc: SymbiosisError, request_id: str) -> JSONReply:
    """Anthropic's error shape, so the Anthropic SDKs raise their matching exceptions."""
    body = AnthropicErrorResponse.from_exception(exc, request_id)
    return JSONReply(dump_json(body), {**exc.headers(), "request-id": request_id}, exc.status_code)


class _UsageBox:
    """Where a stream's frame generator leaves the usage it read on the way."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Usage | None = None


class _Forward:
    """One Messages request, sent to a deployment natively or through chat completions.

    The chat translation is made once, on the first deployment that needs it, so a
    request for Anthropic-only deployments is never refused by the translation.
    """

    def __init__(self, request: MessagesRequest, betas: list[str]) -> None:
        self.request = request
        self.betas = betas
        self.thinking = request.thinking is not None and request.thinking.enabled
        self._chat: ChatCompletionRequest | None = None

    def _native(self, d: Deployment) -> MessagesRequest:
        return aimed_at(self.request, d)

    def _chat_request(self, d: Deployment) -> ChatCompletionRequest:
        if self._chat is None:
            self._chat = to_chat_request(self.request)
        return aimed_at(self._chat, d)

    async def complete(self, d: Deployment) -> tuple[AnthropicMessage, Usage | None]:
        provider = d.provider
        if offers(provider, MessagesCapable):
            message = await provider.messages(self._native(d), betas=self.betas)
            return message, message.usage.to_usage()
        completion = await provider.chat(self._chat_request(d))
        return to_anthropic_message(completion, thinking=self.thinking), completion.usage

    async def open_stream(
        self, d: Deployment, usage: _UsageBox
    ) -> tuple[AsyncIterator[bytes], bytes | None]:
        """The client's SSE frames and the first of them: the upstream call starts here."""
        provider = d.provider
        if offers(provider, MessagesRelayCapable):
            groups = provider.messages_stream_relay(self._native(d), betas=self.betas)
            frames = _native_frames(groups, usage)
        elif offers(provider, MessagesCapable):
            events = provider.messages_stream(self._native(d), betas=self.betas)
            frames = _native_frames(groups_of_one(events), usage)
        else:
            groups = provider.chat_stream_groups(self._chat_request(d))
            frames = _translated_frames(groups, usage, self.thinking)
        try:
            return frames, await anext(frames)
        except StopAsyncIteration:
            return frames, None


async def _native_frames(
    groups: AsyncIterator[list[ServerSentEvent]], box: _UsageBox
) -> AsyncIterator[bytes]:
    """Upstream events re-framed as they arrive, a group in one piece; their usage is
    read on the way."""
    usage = StreamUsage()
    try:
        async for group in groups:
            for item in group:
                usage.feed(item.event, item.data)
            if len(group) == 1:
                yield _frame(group[0].event, group[0].data)
            else:
                yield b"".join([_frame(item.event, item.data) for item in group])
    finally:
        await groups.aclose()  # type: ignore[attr-defined]
        if usage.usage is not None:
            box.value = usage.usage.to_usage()


async def _translated_frames(
    groups: AsyncIterator[list[ChatCompletionChunk]], box: _UsageBox, thinking: bool
) -> AsyncIterator[bytes]:
    """Chat chunks as Anthropic events, the events of one upstream read in one piece."""
    writer = MessagesStreamWriter(thinking=thinking)
    try:
        async for group in groups:
            out = []
            for chunk in group:
                if chunk.usage is not None:
                    box.value = chunk.usage
                out += [_event_frame(event) for event in writer.feed(chunk)]
            if out:
                yield b"".join(out)
    finally:
        await groups.aclose()  # type: ignore[attr-defined]
    if ending := [_event_frame(event) for event in writer.finish()]:
        yield b"".join(ending)


def _betas(call: Call) -> list[str]:
    """The client's ``anthropic-beta`` features (the header may repeat or list several)."""
    values = call.header_values(b"anthropic-beta")
    return [f.strip() for value in values for f in value.split(",") if f.strip()]


def _as_symbiosis_error(exc: Exception, request_id: str) -> SymbiosisError:
    if isinstance(exc, SymbiosisError):
        return exc
    log.exception("request %s failed", request_id, exc_info=exc)
    return SymbiosisError(f"Internal error (request id {request_id})")


def _frame(name: str | None, data: str) -> bytes:
    head = f"event: {name}\n" if name else ""
    return (head + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n").encode()


def _event_frame(event: BaseModel) -> bytes:
    name = getattr(event, "type", "message").encode()
    return b"event: " + name + b"\ndata: " + dump_json(event) + b"\n\n"
