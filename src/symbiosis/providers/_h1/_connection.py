"""One upstream HTTP/1.1 connection: an asyncio Protocol fed to httptools' C parser.

The protocol keeps the current response's state and wakes at most one waiter, the task
that sent the request. It never raises into the event loop: a failure is stored in
``error`` for that task to translate. Two costs are kept off the per-request path:

* headers: no per-header callback; the raw head is kept (a reference to the bytes that
  arrived) and parsed only when someone asks, i.e. for error responses;
* the read timeout: one timer per connection, re-armed lazily. Each read stamps the
  time; when the timer fires it either re-arms for ``last read + timeout`` or fails the
  response. A busy keep-alive connection schedules about one timer per ``timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import httptools

from ._target import Origin

# Pause the socket when a stream's unread body passes this; resume once it is taken.
HIGH_WATER = 1 << 20
_PARSER_ERRORS = (httptools.HttpParserError, httptools.HttpParserUpgrade)


class ReadTimeout(TimeoutError):
    """The upstream sent nothing for the provider's ``timeout``."""


class Dropped(ConnectionError):
    """The upstream closed the connection before the response ended."""


class Connection(asyncio.Protocol):
    """A keep-alive connection to one origin, serving one request at a time."""

    __slots__ = (
        "_buffered",
        "_head",
        "_last_read",
        "_on_gone",
        "_parser",
        "_paused",
        "_stream",
        "_timer",
        "_waiter",
        "busy",
        "chunks",
        "closed",
        "complete",
        "error",
        "got_bytes",
        "head_done",
        "idle",
        "idle_since",
        "keep_alive",
        "loop",
        "origin",
        "requests",
        "status",
        "timeout",
        "transport",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: Origin,
        timeout: float,
        on_gone: Callable[[Connection], None],
    ) -> None:
        self.loop = loop
        self.origin = origin
        self.timeout = timeout
        self._on_gone = on_gone
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._last_read = 0.0
        self.requests = 0
        self.closed = False
        self.idle = False
        self.idle_since = 0.0
        self.busy = False
        self._start(False)

    def _start(self, stream: bool) -> None:
        self._stream = stream
        self._buffered = 0
        self._paused = False
        self._head: list[bytes] = []
        self.chunks: list[bytes] = []
        self.status = 0
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        self.error: BaseException | None = None

    # Used by the pool

    def send(self, data: bytes, stream: bool, now: float) -> None:
        """Write one request; its response is read into this object's fields."""
        self._start(stream)
        self.requests += 1
        self.busy = True
        self._last_read = now
        if self.closed:  # went away between connecting and this request
            self._fail(Dropped("upstream closed the connection before answering"))
            return
        if self._timer is None:
            self._timer = self.loop.call_at(now + self.timeout, self._check_timeout)
        cast(asyncio.Transport, self.transport).write(data)

    async def wait(self) -> None:
        """Until there is news: head, body, end, or a failure."""
        waiter = self.loop.create_future()
        self._waiter = waiter
        await waiter

    def take(self) -> bytes:
        """The body received since the last call, in one piece."""
        chunks = self.chunks
        piece = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.chunks = []
        self._buffered = 0
        if self._paused:
            self._resume()
        return piece

    def buffer_all(self) -> None:
        """Read the rest of the body without flow control (an error body, read whole)."""
        self._stream = False
        if self._paused:
            self._resume()

    def _resume(self) -> None:
        """Read again after a pause. The upstream's silence counts from now: until
        this moment it was waiting for us, and a timeout check before its next bytes
        arrive must not see the time of the read before the pause."""
        self._paused = False
        self._last_read = self.loop.time()
        cast(asyncio.Transport, self.transport).resume_reading()

    def response_headers(self) -> dict[str, str]:
        """The final response's headers, names lower-cased (duplicates joined by ", ")."""
        return parse_head(b"".join(self._head))

    def close(self) -> None:
        """Drop the connection now; the pool hears of it at once, not when the socket ends."""
        if not self.closed:
            self._gone()
            if self.transport is not None:
                self.transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._last_read = self.loop.time()
        if not self.busy:
            # Bytes nobody asked for (a late 408, garbage): the connection is out of step.
            self.close()
            return
        self.got_bytes = True
        if not self.head_done:
            self._head.append(data)
        try:
            self._parser.feed_data(data)
        except _PARSER_ERRORS as exc:
            if self.complete:
                self.keep_alive = False
            else:
                self._fail(exc)

    def eof_received(self) -> bool | None:
        if not self.busy:
            self.close()  # closed while idle: never hand it out again
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()
        if self.busy:
            if exc is None and self.head_done and self._until_eof():
                self._end(keep_alive=False)
            else:
                reason = "mid-response" if self.got_bytes else "before answering"
                self._fail(exc or Dropped(f"upstream closed the connection {reason}"))

    # httptools callbacks

    # A callback when not busy: bytes after the end of the response (or after a failure).

    def on_headers_complete(self) -> None:
        if not self.busy:
            self.keep_alive = False
            return
        self.status = self._parser.get_status_code()
        if self.status >= 200:
            self.head_done = True
            if self._stream:
                self._wake()

    def on_body(self, body: bytes) -> None:
        if not self.busy:
            return
        self.chunks.append(body)
        if self._stream:
            self._buffered += len(body)
            if self._buffered > HIGH_WATER and not self._paused:
                self._paused = True
                cast(asyncio.Transport, self.transport).pause_reading()
            self._wake()

    def on_message_complete(self) -> None:
        # An informational (1xx) head is followed by the real one.
        if self.busy and self.status >= 200:
            self._end(self._parser.should_keep_alive())

    # internals

    def _end(self, keep_alive: bool) -> None:
        self.complete = True
        self.keep_alive = keep_alive
        self.busy = False
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.busy = False
        self._wake()
        self.close()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _gone(self) -> None:
        if not self.closed:
            self.closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._on_gone(self)

    def _until_eof(self) -> bool:
        """Whether the body is delimited by the connection closing (no length, not chunked)."""
        headers = self.response_headers()
        return "content-length" not in headers and "chunked" not in headers.get(
            "transfer-encoding", ""
        )

    def _check_timeout(self) -> None:
        self._timer = None
        if not self.busy or self.closed:
            return  # idle: the next request arms a new timer
        now = self.loop.time()
        # A paused socket waits for our reader, not for the upstream.
        deadline = now + self.timeout if self._paused else self._last_read + self.timeout
        if deadline - now > 0.001:
            self._timer = self.loop.call_at(deadline, self._check_timeout)
            return
        self._fail(ReadTimeout())


def parse_head(raw: bytes) -> dict[str, str]:
    """Headers of the last non-informational response head at the start of ``raw``."""
    lines = raw.split(b"\n")
    headers: dict[str, str] = {}
    index = 0
    while index < len(lines):
        status_line = lines[index].split(None, 2)
        index += 1
        headers = {}
        while index < len(lines):
            line = lines[index].rstrip(b"\r")
            index += 1
            if not line:
                break
            name, _, value = line.partition(b":")
            key = name.strip().lower().decode("latin-1")
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        informational = len(status_line) > 1 and status_line[1][:1] == b"1"
        if not informational:
            break
    return headers
