"""Closed-loop HTTP/1.1 load generator: N keep-alive connections, each one request at a time.

Why raw asyncio + httptools and not httpx or aiohttp: the client shares 2 cores with the
gateway and the fake upstream, so every microsecond it spends is taken from what is
measured. A protocol object per connection with the C response parser costs a few
microseconds per request (it reports its own CPU per request, ``client_cpu_ms``).

It runs ``--warmup`` seconds unmeasured, then ``--duration`` seconds measured, then stops
issuing and lets in-flight requests finish. On stdout it writes one JSON object per
line: ``{"event": "start"}`` and ``{"event": "stop"}`` at the edges of the measured window
(the parent samples the server's CPU on them), then ``{"event": "result", ...}``.

``--api anthropic`` speaks Anthropic's Messages API instead of OpenAI's chat API: it
posts to ``/v1/messages`` with ``x-api-key`` and ``anthropic-version`` headers, and a
stream is complete when its last event is ``message_stop`` instead of ``data: [DONE]``.

Run: ``python bench/loadgen.py --port 9001 --body '{"model": ...}' -c 32 -d 10``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, cast

import httptools
import orjson
import uvloop

_DRAIN_TIMEOUT = 10.0
_TAIL = 256  # bytes of a stream kept to find its last event


@dataclass(frozen=True)
class Api:
    """What differs between the wire formats the load generator speaks."""

    path: str
    key_header: str  # formatted with the key
    headers: tuple[str, ...]
    stream_end: bytes  # the first line of a complete stream's last event


APIS = {
    "openai": Api("/v1/chat/completions", "Authorization: Bearer {}", (), b"data: [DONE]"),
    "anthropic": Api(
        "/v1/messages",
        "x-api-key: {}",
        ("anthropic-version: 2023-06-01",),
        b"event: message_stop",
    ),
}


def build_request(
    port: int,
    path: str,
    body: bytes,
    api_key: str | None,
    method: str = "POST",
    api: Api = APIS["openai"],
) -> bytes:
    """The exact bytes of one request, built once and resent on every request."""
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if body:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    head.append("Accept: application/json, text/event-stream")
    head += api.headers
    if api_key:
        head.append(api.key_header.format(api_key))
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def last_event(tail: bytes) -> bytes:
    """The first line of the last SSE event at the end of a stream (empty unless the
    stream ends an event). Comment blocks (``: ...``) are skipped, as SSE clients do:
    the gateway puts a stream's cost in one, after ``message_stop``."""
    if not tail.endswith(b"\n\n"):
        return b""
    for block in reversed(tail[:-2].split(b"\n\n")):
        lines = block.split(b"\n")
        if not all(line.startswith(b":") for line in lines):
            return lines[0]
    return b""


@dataclass
class Tally:
    """What the measured window saw; requests finishing outside it are not counted."""

    measuring: bool = False
    issuing: bool = True
    latencies: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    in_flight: int = 0

    def error(self, reason: str) -> None:
        if self.measuring:
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(reason)


class ClientConnection(asyncio.Protocol):
    """Sends the request, parses the response, records timings, sends the next one."""

    def __init__(
        self, request: bytes, stream_end: bytes | None, tally: Tally, closed: asyncio.Event
    ):
        self._request = request
        self._stream_end = stream_end  # None for an answer that is not a stream
        self._tally = tally
        self._closed = closed
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._sent = 0.0
        self._first = 0.0
        self._tail = b""
        self._busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        if not self._tally.issuing or self._transport is None:
            if self._transport is not None:
                self._transport.close()
            return
        self._busy = True
        self._tally.in_flight += 1
        self._first = 0.0
        self._tail = b""
        self._sent = time.perf_counter()
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"unparsable response: {exc}")
            if self._transport is not None:
                self._transport.close()

    def on_body(self, body: bytes) -> None:
        if not self._first:
            self._first = time.perf_counter()
        if self._stream_end is not None:
            self._tail = (self._tail + body)[-_TAIL:]

    def on_message_complete(self) -> None:
        now = time.perf_counter()
        tally = self._tally
        status = self._parser.get_status_code()
        self._busy = False
        tally.in_flight -= 1
        if status != 200:
            tally.error(f"HTTP {status}")
        elif self._stream_end is not None and last_event(self._tail) != self._stream_end:
            tally.error(f"stream did not end with {self._stream_end!r}: {self._tail[-40:]!r}")
        elif tally.measuring:
            tally.latencies.append(now - self._sent)
            tally.first_bytes.append((self._first or now) - self._sent)
        self._send()

    def _fail(self, reason: str) -> None:
        if self._busy:
            self._busy = False
            self._tally.in_flight -= 1
            self._tally.error(reason)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(f"connection lost: {exc!r}")
        self._closed.set()


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted ``values``, in milliseconds."""
    if not values:
        return None
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[rank - 1] * 1000


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(payload) + b"\n")
    sys.stdout.flush()


async def _keep_connection(
    port: int, request: bytes, stream_end: bytes | None, tally: Tally, stagger: float
) -> None:
    """One virtual user: a connection, reopened if the server drops it while we run."""
    await asyncio.sleep(stagger)
    loop = asyncio.get_running_loop()
    while tally.issuing:
        closed = asyncio.Event()
        try:
            await loop.create_connection(
                lambda closed=closed: ClientConnection(request, stream_end, tally, closed),
                "127.0.0.1",
                port,
            )
        except OSError as exc:
            tally.error(f"connect failed: {exc}")
            await asyncio.sleep(0.05)
            continue
        await closed.wait()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, measure, drain; return the measured figures."""
    api = APIS[args.api]
    body = args.body.encode()
    path = args.path or api.path
    request = build_request(args.port, path, body, args.api_key, args.method, api)
    stream_end = api.stream_end if body and orjson.loads(body).get("stream") else None
    tally = Tally()
    users = [
        asyncio.create_task(_keep_connection(args.port, request, stream_end, tally, i * 0.001))
        for i in range(args.concurrency)
    ]
    await asyncio.sleep(args.warmup)
    cpu_start = os.times()
    started = time.perf_counter()
    tally.measuring = True
    _emit({"event": "start"})
    await asyncio.sleep(args.duration)
    tally.measuring = False
    elapsed = time.perf_counter() - started
    _emit({"event": "stop"})
    cpu_end = os.times()
    tally.issuing = False
    # Each connection closes after its in-flight response; give stragglers a bound.
    _, late = await asyncio.wait(users, timeout=_DRAIN_TIMEOUT)
    for user in late:
        user.cancel()
    await asyncio.gather(*users, return_exceptions=True)
    client_cpu = (cpu_end.user + cpu_end.system) - (cpu_start.user + cpu_start.system)
    return summarize(tally, elapsed, client_cpu)


def summarize(tally: Tally, elapsed: float, client_cpu: float) -> dict[str, Any]:
    latencies = sorted(tally.latencies)
    first_bytes = sorted(tally.first_bytes)
    count = len(latencies)
    return {
        "event": "result",
        "requests": count,
        "errors": tally.errors,
        "error_samples": tally.error_samples,
        "seconds": elapsed,
        "rps": count / elapsed if elapsed else 0.0,
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] * 1000 if latencies else None,
        "ttfb_p50_ms": percentile(first_bytes, 50),
        "ttfb_p99_ms": percentile(first_bytes, 99),
        "client_cpu_s": client_cpu,
        "client_cpu_ms": client_cpu / count * 1000 if count else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api", choices=sorted(APIS), default="openai", help="wire format")
    parser.add_argument("--path", default=None, help="default: the API's (chat or messages)")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default="", help="JSON request body (none for a GET)")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-d", "--duration", type=float, default=10.0)
    parser.add_argument("-w", "--warmup", type=float, default=2.0)
    args = parser.parse_args()
    try:
        _emit(uvloop.run(run(args)))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
