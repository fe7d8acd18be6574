"""Relaying OpenAI-shaped answers as the upstream's bytes.

When a provider's answers already are OpenAI's JSON, a gateway need not build typed
responses only to serialise them again: it checks each answer is a JSON object, reads
the usage it must meter, and passes the bytes on. That is cheaper, and the client gets
exactly what the upstream said, fields this version does not know included.

Streams are relayed in the groups one upstream read brought, so a relay makes one
write per read, whatever the number of events in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, Protocol, TypeGuard, TypeVar, runtime_checkable

from ..wire import ChatCompletionRequest, Usage
from ..wire.anthropic import MessagesRequest
from ._sse import ServerSentEvent

T = TypeVar("T")
_OFFERS: dict[tuple[type, type], bool] = {}


class RelayedCompletion:
    """A ``chat.completion`` as the upstream sent it, with the usage read from it."""

    __slots__ = ("data", "usage")

    def __init__(self, data: bytes, usage: Usage | None) -> None:
        self.data = data
        self.usage = usage


class RelayedChunk:
    """A ``chat.completion.chunk`` as the upstream sent it, checked to be a JSON object.

    ``data`` is relayed as is; ``usage`` and ``has_choices`` are what a relay needs to
    know, read from ``payload`` (the parsed object) without validating the rest.
    """

    __slots__ = ("data", "has_choices", "payload", "usage")

    def __init__(
        self, data: bytes, payload: dict[str, Any], usage: Usage | None, has_choices: bool
    ) -> None:
        self.data = data
        self.payload = payload
        self.usage = usage
        self.has_choices = has_choices


@runtime_checkable
class CompletionRelayCapable(Protocol):
    """A provider whose chat answers are OpenAI's own JSON (``chat`` without the types)."""

    async def chat_relay(self, request: ChatCompletionRequest) -> RelayedCompletion: ...


@runtime_checkable
class ChunkRelayCapable(Protocol):
    """A provider whose stream chunks are OpenAI's own, so a gateway can relay their bytes.

    ``chat_stream_relay`` is ``chat_stream`` without building a typed chunk per event,
    in the groups the chunks arrived in, so a relay writes each group at once.
    """

    def chat_stream_relay(
        self, request: ChatCompletionRequest
    ) -> AsyncIterator[list[RelayedChunk]]:
        """Groups of chunks as they arrive; the last chunk carries usage."""
        ...


@runtime_checkable
class MessagesRelayCapable(Protocol):
    """A ``MessagesCapable`` provider that can also hand over its stream in read groups.

    ``messages_stream_relay`` is ``messages_stream`` with the events that one upstream
    read completed yielded together; an ``error`` event is raised after the events
    before it.
    """

    def messages_stream_relay(
        self, request: MessagesRequest, *, betas: Sequence[str] = ()
    ) -> AsyncIterator[list[ServerSentEvent]]: ...


async def groups_of_one(items: AsyncIterator[T]) -> AsyncIterator[list[T]]:
    """A stream that cannot tell where upstream reads end, as groups of one item."""
    async with aclosing(items):  # type: ignore[type-var]
        async for item in items:
            yield [item]


def offers(provider: object, capability: type[T]) -> TypeGuard[T]:
    """``isinstance(provider, capability)``, decided once per provider class.

    An ``isinstance`` against a protocol inspects each of its members on every call,
    which costs microseconds on every request; a provider's class fixes its methods.
    """
    key = (type(provider), capability)
    try:
        return _OFFERS[key]
    except KeyError:
        found = _OFFERS[key] = isinstance(provider, capability)
        return found


__all__ = [
    "ChunkRelayCapable",
    "CompletionRelayCapable",
    "MessagesRelayCapable",
    "RelayedChunk",
    "RelayedCompletion",
    "groups_of_one",
    "offers",
]
