"""The pool: keep-alive connections per origin, a bound on their number, the two calls.

``H1Pool`` has the interface providers use through their shortcut (``post``, ``stream``,
``aclose``) and translates every failure into the gateway's errors at this boundary:

* cannot connect (refused, unreachable, TLS, connect timeout), pool exhausted -> 503
  ``UpstreamUnavailableError``;
* no byte for ``timeout`` -> 504 ``UpstreamTimeoutError``;
* connection dropped mid-response, malformed HTTP -> 502 ``UpstreamError``;
* an HTTP status >= 400 -> ``error_from_response``.

A connection returns to its origin's idle list (LIFO) only after a response that was
read to its end and allows keep-alive; anything else (an error, a cancelled or abandoned
stream) closes it. A request that fails on a reused connection before any response byte
(the server closed it while idle) is sent once more on a new connection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping

from ...exceptions import SymbiosisError, UpstreamError, UpstreamTimeoutError
from ...exceptions import UpstreamUnavailableError as Unavailable
from .._http import CONNECT_TIMEOUT, error_from_response
from ._connection import Connection, ReadTimeout
from ._target import Origin, Target, parse_target

MAX_CONNECTIONS = 512
MAX_IDLE = 128
IDLE_EXPIRY = 30.0
_TARGET_CACHE = 1024


class _Stale(Exception):
    """A reused connection died before answering: send the request again."""


class H1Pool:
    """HTTP/1.1 keep-alive connections for one provider, on asyncio Protocols.

    ``timeout`` is the read timeout (seconds without a byte from upstream); connecting,
    and waiting for a free connection when ``max_connections`` are open, give up after
    ``min(timeout, CONNECT_TIMEOUT)``. Use it from one event loop at a time.
    """

    def __init__(
        self,
        timeout: float,
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_idle: int = MAX_IDLE,
        idle_expiry: float = IDLE_EXPIRY,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout = timeout
        self._connect_timeout = min(timeout, CONNECT_TIMEOUT)
        self._max = max_connections
        self._max_idle = max_idle
        self._expiry = idle_expiry
        self._tls = ssl_context
        self._targets: dict[str, Target] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reset()

    def _reset(self) -> None:
        self._idle: dict[Origin, list[Connection]] = {}
        self._idle_count = 0
        self._open = 0
        self._busy: set[Connection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None

    def serves(self, url: str) -> bool:
        """False when ``url`` must go through httpx (a proxy is configured for it...)."""
        return (self._targets.get(url) or self._target(url)).direct

    async def post(
        self, provider: str, url: str, content: bytes, headers: Mapping[str, str]
    ) -> bytes:
        """The response body; an upstream failure raises the mapped gateway error."""
        target = self._targets.get(url) or self._target(url)
        conn = await self._exchange(provider, target, target.request(content, headers), False)
        status = conn.status
        body = conn.take() if conn.chunks else b""
        if status < 400:
            self._release(conn)
            return body
        response_headers = conn.response_headers()
        self._release(conn)
        raise error_from_response(provider, status, body, response_headers)

    async def stream(
        self, provider: str, url: str, content: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[bytes]:
        """The response body piece by piece, as it arrives."""
        target = self._targets.get(url) or self._target(url)
        conn = await self._exchange(provider, target, target.request(content, headers), True)
        try:
            if conn.status >= 400:
                conn.buffer_all()
                await self._until(provider, conn, head=False)
                if conn.error is not None:
                    raise _failure(provider, conn.error)
                body = conn.take() if conn.chunks else b""
                raise error_from_response(provider, conn.status, body, conn.response_headers())
            while True:
                if conn.chunks:
                    yield conn.take()
                elif conn.complete:
                    break
                elif conn.error is not None:
                    raise _failure(provider, conn.error)
                else:
                    await conn.wait()
        finally:
            self._release(conn)

    async def aclose(self) -> None:
        """Close every connection, idle or busy."""
        conns = [c for idle in self._idle.values() for c in idle] + list(self._busy)
        for conn in conns:
            conn.close()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._reset()
        if conns:
            await asyncio.sleep(0)  # let the transports release their sockets

    # one request

    async def _exchange(
        self, provider: str, target: Target, data: bytes, stream: bool
    ) -> Connection:
        """Send ``data``; the connection once its response has a head (a stream) or ended."""
        if not target.direct:
            raise RuntimeError(f"{target.origin[0]}://{target.origin[1]} is not for this pool")
        conn = await self._acquire(provider, target, reuse=True)
        try:
            await self._send(provider, conn, data, stream, retry=conn.requests > 0)
        except _Stale:
            conn = await self._acquire(provider, target, reuse=False)
            await self._send(provider, conn, data, stream, retry=False)
        return conn

    async def _send(
        self, provider: str, conn: Connection, data: bytes, stream: bool, *, retry: bool
    ) -> None:
        """Write the request and wait for the head (a stream) or the end of the response.

        With ``retry``, a connection that dies before any response byte raises ``_Stale``.
        """
        try:
            conn.send(data, stream, conn.loop.time())
        except BaseException:
            conn.close()
            raise
        await self._until(provider, conn, head=stream)
        error = conn.error
        if error is not None:
            if retry and not conn.got_bytes and not isinstance(error, ReadTimeout):
                raise _Stale
            raise _failure(provider, error)

    async def _until(self, provider: str, conn: Connection, *, head: bool) -> None:
        """Wait for the response's end (or only its head); a failure closes the connection
        and leaves it in ``conn.error``."""
        try:
            while not (conn.complete or (head and conn.head_done)):
                if conn.error is not None:
                    conn.close()
                    return
                await conn.wait()
        except BaseException:
            conn.close()  # cancelled: the rest of the response will never be read
            raise

    def _target(self, url: str) -> Target:
        if len(self._targets) >= _TARGET_CACHE:
            self._targets.clear()
        target = self._targets[url] = parse_target(url)
        return target

    # connections

    async def _acquire(self, provider: str, target: Target, *, reuse: bool) -> Connection:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._adopt(loop)
        origin = target.origin
        conn = self._pop_idle(origin, loop.time()) if reuse else None
        if conn is None and self._open >= self._max:
            conn = await self._wait_for_room(provider, origin, reuse)
        if conn is None:
            conn = await self._connect(provider, target, loop)
        self._busy.add(conn)
        return conn

    def _pop_idle(self, origin: Origin, now: float) -> Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            conn.idle = False
            self._idle_count -= 1
            if now - conn.idle_since < self._expiry:
                return conn
            conn.close()
        return None

    async def _wait_for_room(self, provider: str, origin: Origin, reuse: bool) -> Connection | None:
        """An idle connection to ``origin`` (if ``reuse``), or None once one may be opened."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                while True:
                    conn = self._pop_idle(origin, loop.time()) if reuse else None
                    if conn is not None or self._open < self._max:
                        return conn
                    if self._idle_count:
                        self._evict_one()
                        continue
                    waiter = loop.create_future()
                    self._waiters.append(waiter)
                    try:
                        await waiter
                    except BaseException:
                        if waiter.done() and not waiter.cancelled():
                            self._wake_one()  # pass our turn on
                        raise
        except TimeoutError:
            raise Unavailable(f"{provider}: too many requests in flight") from None

    async def _connect(
        self, provider: str, target: Target, loop: asyncio.AbstractEventLoop
    ) -> Connection:
        _, host, port = target.origin
        tls = self._tls_context() if target.tls else None
        created: list[Connection] = []

        def protocol() -> Connection:
            conn = Connection(loop, target.origin, self._timeout, self._gone)
            created.append(conn)
            return conn

        self._open += 1  # every created Connection gives it back once, in _gone
        try:
            async with asyncio.timeout(self._connect_timeout):
                await loop.create_connection(
                    protocol, host, port, ssl=tls, server_hostname=host if tls else None
                )
        except BaseException as exc:
            if created:
                created[0].close()
            else:
                self._open -= 1
                self._wake_one()
            if isinstance(exc, TimeoutError):
                raise Unavailable(f"{provider}: could not connect in time") from None
            if isinstance(exc, OSError):
                raise Unavailable(
                    f"{provider}: upstream unreachable (cannot connect to {host}:{port}: {exc})"
                ) from exc
            raise
        return created[0]

    def _release(self, conn: Connection) -> None:
        """Back to the idle list if the response ended cleanly with keep-alive, else close."""
        self._busy.discard(conn)
        if conn.closed:
            return
        if not (conn.complete and conn.keep_alive) or self._idle_count >= self._max_idle:
            conn.close()
            return
        conn.idle = True
        conn.idle_since = conn.loop.time()
        idle = self._idle.get(conn.origin)
        if idle is None:
            idle = self._idle[conn.origin] = []
        idle.append(conn)
        self._idle_count += 1
        if self._waiters:
            self._wake_one()
        if self._sweeper is None:
            self._sweeper = conn.loop.call_later(self._expiry, self._sweep)

    def _gone(self, conn: Connection) -> None:
        """Called once per connection as it closes, by either side."""
        if conn.loop is not self._loop:
            return  # from a loop this pool has left behind
        self._open -= 1
        self._busy.discard(conn)
        if conn.idle:
            conn.idle = False
            self._idle[conn.origin].remove(conn)
            self._idle_count -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _evict_one(self) -> None:
        """Close the longest-idle connection of any origin, to make room for another."""
        oldest = min((idle[0] for idle in self._idle.values() if idle), key=lambda c: c.idle_since)
        oldest.close()

    def _sweep(self) -> None:
        """Close connections idle past the expiry; runs while any are idle."""
        self._sweeper = None
        loop = self._loop
        if loop is None:
            return
        limit = loop.time() - self._expiry
        for conn in [c for idle in self._idle.values() for c in idle if c.idle_since <= limit]:
            conn.close()
        if self._idle_count:
            self._sweeper = loop.call_later(self._expiry, self._sweep)

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """First use, or a new event loop: connections of the old one are unusable."""
        for conn in [c for idle in self._idle.values() for c in idle]:
            conn.idle = False
            if not conn.loop.is_closed():
                conn.close()
        self._loop = loop
        self._reset()

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            import httpx

            # httpx's trust (certifi, or SSL_CERT_FILE / SSL_CERT_DIR); HTTP/1.1 only.
            self._tls = httpx.create_ssl_context()
            self._tls.set_alpn_protocols(["http/1.1"])
        return self._tls


def _failure(provider: str, exc: BaseException) -> SymbiosisError:
    """The gateway error for a connection that failed after the request was sent."""
    if isinstance(exc, ReadTimeout):
        return UpstreamTimeoutError(f"{provider}: upstream did not answer in time")
    return UpstreamError(f"{provider}: connection to upstream failed ({exc!r})")
