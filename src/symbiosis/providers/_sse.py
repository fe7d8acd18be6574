"""A small incremental decoder for server-sent events, fed raw bytes as they arrive."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import NamedTuple


class ServerSentEvent(NamedTuple):
    """One event; a tuple, since a stream makes one per chunk and tuples are cheap."""

    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    """Turns a byte stream into events; fields follow the WHATWG event-stream format."""

    __slots__ = ("_buffer", "_data", "_event", "_id")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume bytes; return the events completed by them.

        Lines are split once per piece (not one slice per line), and the usual
        ``data: …`` and blank lines take the short way: a stream is mostly those.
        """
        buffer = self._buffer + chunk if self._buffer else chunk
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[ServerSentEvent] = []
        for raw in lines:
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if raw.startswith(b"data: "):
                self._data.append(raw[6:].decode("utf-8", errors="replace"))
            elif not raw:
                if self._data or self._event:
                    events.append(self._dispatch())
            else:
                self._line(raw.decode("utf-8", errors="replace"))
        return events

    def flush(self) -> list[ServerSentEvent]:
        """Finish the stream: a last event without its blank line still counts."""
        events = self.feed(b"\n") if self._buffer else []
        if self._data:
            events.append(self._dispatch())
        return events

    def _line(self, line: str) -> None:
        """Any other non-blank line: a comment, or a field other than ``data: ``."""
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value

    def _dispatch(self) -> ServerSentEvent:
        data = self._data
        event = ServerSentEvent(
            data[0] if len(data) == 1 else "\n".join(data), self._event, self._id
        )
        self._data = []
        self._event = None
        return event


async def iter_sse_groups(chunks: AsyncIterable[bytes]) -> AsyncIterator[list[ServerSentEvent]]:
    """Yield the events each piece of bytes completes, together, as soon as it arrives.

    A relay writes each group at once: one write per upstream read, not per event.
    """
    decoder = SSEDecoder()
    async for chunk in chunks:
        if events := decoder.feed(chunk):
            yield events
    if events := decoder.flush():
        yield events


async def iter_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    """Yield each event as soon as its bytes have arrived."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.flush():
        yield event
