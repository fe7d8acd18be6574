"""The native HTTP/1.1 pool against real local servers: framing, reuse, failures, TLS."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from symbiosis.exceptions import (
    InvalidRequestError,
    RateLimitError,
    SymbiosisError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from symbiosis.providers import OpenAICompatibleProvider
from symbiosis.providers._h1 import H1Pool
from symbiosis.providers._http import TRANSPORT_ENV
from symbiosis.wire import ChatCompletionRequest

HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-up"}
BODY = b'{"model":"m"}'

Writer = asyncio.StreamWriter
# Answers one request; ``index`` counts requests on this connection. False closes it.
Handler = Callable[[Writer, int], Awaitable[bool | None]]


@dataclass
class Upstream:
    """A scripted HTTP/1.1 server: what it saw, for the test to check."""

    url: str = ""
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    heads: list[bytes] = field(default_factory=list)
    writers: set[Writer] = field(default_factory=set)
    client_closed: asyncio.Event = field(default_factory=asyncio.Event)


async def _read_request(reader: asyncio.StreamReader, upstream: Upstream) -> bool:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return False
    length = 0
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    upstream.heads.append(head)
    return True


@contextlib.asynccontextmanager
async def serve(
    handler: Handler, *, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> AsyncIterator[Upstream]:
    upstream = Upstream()

    async def connection(reader: asyncio.StreamReader, writer: Writer) -> None:
        upstream.connections += 1
        upstream.open_now += 1
        upstream.most_open = max(upstream.most_open, upstream.open_now)
        upstream.writers.add(writer)
        try:
            index = 0
            while await _read_request(reader, upstream):
                if await handler(writer, index) is False:
                    break
                await writer.drain()
                index += 1
            else:
                upstream.client_closed.set()
        except ConnectionError:
            upstream.client_closed.set()
        finally:
            upstream.open_now -= 1
            upstream.writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(connection, host, 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    scheme = "https" if tls else "http"
    authority = f"[{host}]" if ":" in host else host
    upstream.url = f"{scheme}://{authority}:{port}/v1/chat/completions"
    async with server:
        yield upstream
        server.close()
        for writer in list(upstream.writers):  # the client's idle connections
            writer.transport.abort()


def response(body: bytes, status: str = "200 OK", headers: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


async def ok(writer: Writer, index: int) -> None:
    writer.write(response(b'{"n":%d}' % index))


@pytest.fixture
async def pool() -> AsyncIterator[H1Pool]:
    pool = H1Pool(5.0)
    yield pool
    await pool.aclose()


async def collect(pieces: AsyncIterator[bytes], into: list[bytes] | None = None) -> list[bytes]:
    into = [] if into is None else into
    async for piece in pieces:
        into.append(piece)
    return into


async def _post(pool: H1Pool, url: str) -> bytes:
    return await pool.post("up", url, BODY, HEADERS)


async def _stream(pool: H1Pool, url: str) -> list[bytes]:
    return await collect(pool.stream("up", url, BODY, HEADERS))


# keep-alive and concurrency


async def test_sequential_requests_share_one_connection(pool: H1Pool) -> None:
    async with serve(ok) as upstream:
        bodies = [await pool.post("up", upstream.url, BODY, HEADERS) for _ in range(5)]
    assert bodies == [b'{"n":%d}' % i for i in range(5)]
    assert upstream.connections == 1


async def test_request_head_is_well_formed(pool: H1Pool) -> None:
    async with serve(ok) as upstream:
        await pool.post("up", upstream.url + "?api-version=1", BODY, {**HEADERS, "Host": "x"})
    lines = upstream.heads[0].decode().split("\r\n")
    assert lines[0] == "POST /v1/chat/completions?api-version=1 HTTP/1.1"
    port = upstream.url.split(":")[2].split("/")[0]
    fields = [line.lower() for line in lines[1:] if line]
    assert f"host: 127.0.0.1:{port}" in fields
    assert "host: x" not in fields
    assert {"authorization: bearer sk-up", "accept-encoding: identity"} <= set(fields)
    assert f"content-length: {len(BODY)}" in fields


async def test_concurrent_requests_open_connections_and_return_them(pool: H1Pool) -> None:
    async def slow(writer: Writer, index: int) -> None:
        await asyncio.sleep(0.05)
        writer.write(response(b"{}"))

    async with serve(slow) as upstream:
        await asyncio.gather(*(pool.post("up", upstream.url, BODY, HEADERS) for _ in range(4)))
        assert upstream.connections == 4
        await asyncio.gather(*(pool.post("up", upstream.url, BODY, HEADERS) for _ in range(4)))
    assert upstream.connections == 4


# response framing


async def _chunked(writer: Writer, index: int) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    writer.write(chunk(b'{"a":') + chunk(b"1}") + b"0\r\n\r\n")


async def _length(writer: Writer, index: int) -> None:
    writer.write(response(b'{"a":1}'))


async def _until_close(writer: Writer, index: int) -> bool:
    writer.write(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"a":')
    await writer.drain()
    await asyncio.sleep(0.01)
    writer.write(b"1}")
    return False


@pytest.mark.parametrize(
    ("handler", "connections"),
    [(_length, 1), (_chunked, 1), (_until_close, 2)],
    ids=["content-length", "chunked", "close-delimited"],
)
async def test_body_framings(pool: H1Pool, handler: Handler, connections: int) -> None:
    async with serve(handler) as upstream:
        assert await pool.post("up", upstream.url, BODY, HEADERS) == b'{"a":1}'
        assert b"".join(await collect(pool.stream("up", upstream.url, BODY, HEADERS))) == (
            b'{"a":1}'
        )
    assert upstream.connections == connections


async def test_stream_passes_pieces_through_before_the_body_ends(pool: H1Pool) -> None:
    release = asyncio.Event()
    sent_last = False

    async def paced(writer: Writer, index: int) -> None:
        nonlocal sent_last
        writer.write(STREAM_HEAD + chunk(b"data: 1\n\n"))
        await writer.drain()
        await asyncio.wait_for(release.wait(), 5)
        sent_last = True
        writer.write(chunk(b"data: 2\n\n") + b"0\r\n\r\n")

    async with serve(paced) as upstream:
        pieces = []
        async for piece in pool.stream("up", upstream.url, BODY, HEADERS):
            if not pieces:
                assert not sent_last
                release.set()
            pieces.append(piece)
    assert pieces == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_a_slow_reader_pauses_the_socket_without_timing_out() -> None:
    """Flow control: a reader that stops makes the upstream wait, not the pool buffer."""
    size = 24 << 20
    finished = asyncio.Event()

    async def big(writer: Writer, index: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        for _ in range(size >> 16):
            writer.write(b"x" * (1 << 16))
            await writer.drain()
        finished.set()

    pool = H1Pool(0.3)
    async with serve(big) as upstream:
        received = 0
        async for piece in pool.stream("up", upstream.url, BODY, HEADERS):
            if not received:
                await asyncio.sleep(0.6)  # longer than the read timeout
                assert not finished.is_set()
            received += len(piece)
    assert received == size
    await pool.aclose()


async def test_silence_after_a_pause_counts_from_the_resume() -> None:
    """The read timeout measures the upstream's silence, not the time our reader held
    the socket paused: a check between the resume and the upstream's next bytes passes."""
    timeout = 1.0
    burst = (1 << 20) + 1  # passes the high-water mark with its last byte: a pause, nothing left

    async def burst_then_wait(writer: Writer, index: int) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (1 + burst + 1))
        writer.write(b"x")  # the reader takes this, then stops reading
        await asyncio.sleep(0.1)
        writer.write(b"x" * burst)
        await writer.drain()
        # The reader resumes at 2.5 s; the timer's checks fall at 1, 2 and 3 s.
        await asyncio.sleep(started + 3.2 - loop.time())
        writer.write(b"x")  # 0.7 s after the resume: within the timeout

    loop = asyncio.get_running_loop()
    pool = H1Pool(timeout)
    async with serve(burst_then_wait) as upstream:
        started = loop.time()
        received = 0
        async for piece in pool.stream("up", upstream.url, BODY, HEADERS):
            if not received:
                await asyncio.sleep(started + 2.5 - loop.time())
            received += len(piece)
    assert received == burst + 2
    await pool.aclose()


# keep-alive failures


async def test_reused_connection_closed_by_server_is_retried_once(pool: H1Pool) -> None:
    async def once_per_connection(writer: Writer, index: int) -> bool | None:
        if index:
            return False  # as if the idle timeout hit just as the request came in
        writer.write(response(b"{}"))
        return None

    async with serve(once_per_connection) as upstream:
        for _ in range(3):
            assert await pool.post("up", upstream.url, BODY, HEADERS) == b"{}"
    assert len(upstream.heads) == 5  # two requests were sent twice
    assert upstream.connections == 3


async def test_the_retry_is_made_once(pool: H1Pool) -> None:
    answered = False

    async def first_only(writer: Writer, index: int) -> bool:
        nonlocal answered
        if answered:
            return False
        answered = True
        writer.write(response(b"{}"))
        return True

    async with serve(first_only) as upstream:
        await pool.post("up", upstream.url, BODY, HEADERS)
        with pytest.raises(UpstreamError) as caught:
            await pool.post("up", upstream.url, BODY, HEADERS)
    assert (type(caught.value), caught.value.status_code) == (UpstreamError, 502)
    assert "before answering" in caught.value.message
    assert len(upstream.heads) == 3


async def test_fresh_connection_that_dies_is_not_retried(pool: H1Pool) -> None:
    async def hang_up(writer: Writer, index: int) -> bool:
        return False

    async with serve(hang_up) as upstream:
        with pytest.raises(UpstreamError) as caught:
            await pool.post("up", upstream.url, BODY, HEADERS)
    assert type(caught.value) is UpstreamError
    assert caught.value.status_code == 502
    assert "connection to upstream failed" in caught.value.message
    assert len(upstream.heads) == 1


async def test_drop_mid_body_is_502_and_the_connection_is_not_reused(pool: H1Pool) -> None:
    async def truncated(writer: Writer, index: int) -> bool | None:
        if index == 1:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
            return False
        writer.write(response(b"{}"))
        return None

    async with serve(truncated) as upstream:
        await pool.post("up", upstream.url, BODY, HEADERS)
        with pytest.raises(UpstreamError) as caught:
            await pool.post("up", upstream.url, BODY, HEADERS)
        assert await pool.post("up", upstream.url, BODY, HEADERS) == b"{}"
    assert (type(caught.value), caught.value.status_code) == (UpstreamError, 502)
    assert "mid-response" in caught.value.message
    assert upstream.connections == 2


async def test_malformed_response_is_502(pool: H1Pool) -> None:
    async def garbage(writer: Writer, index: int) -> None:
        writer.write(b"this is not HTTP\r\n\r\n")

    async with serve(garbage) as upstream:
        with pytest.raises(UpstreamError) as caught:
            await pool.post("up", upstream.url, BODY, HEADERS)
    assert (type(caught.value), caught.value.status_code) == (UpstreamError, 502)


# errors from the upstream's status


async def _statuses(writer: Writer, index: int) -> None:
    answers = [
        response(b'{"error":{"message":"slow down"}}', "429 Too Many", "retry-after: 7\r\n"),
        response(b"<html>down</html>", "503 Unavailable", "Retry-After: 3\r\n"),
        response(b'{"error":{"message":"bad temperature","param":"temperature"}}', "400 Bad"),
    ]
    writer.write(answers[index % 3])


@pytest.mark.parametrize("streamed", [False, True], ids=["post", "stream"])
async def test_error_statuses_map_with_retry_after(pool: H1Pool, streamed: bool) -> None:
    async def call(upstream: Upstream) -> SymbiosisError:
        with pytest.raises(SymbiosisError) as caught:
            await (_stream if streamed else _post)(pool, upstream.url)
        return caught.value

    async with serve(_statuses) as upstream:
        limited, down, invalid = [await call(upstream) for _ in range(3)]
    assert type(limited) is RateLimitError
    assert (limited.status_code, limited.headers()) == (429, {"retry-after": "7"})
    assert type(down) is UpstreamUnavailableError
    assert (down.status_code, down.headers()) == (503, {"retry-after": "3"})
    assert type(invalid) is InvalidRequestError
    assert (invalid.message, invalid.param) == ("bad temperature", "temperature")
    assert upstream.connections == 1  # error bodies are read whole: the connection stays


# transport failures


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_connection_refused_is_503(pool: H1Pool) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1/chat/completions"
    with pytest.raises(UpstreamUnavailableError) as caught:
        await pool.post("up", url, BODY, HEADERS)
    assert caught.value.status_code == 503
    assert caught.value.message.startswith("up: upstream unreachable (cannot connect to")


async def test_connect_timeout_is_503() -> None:
    """An address that never answers the SYN. Non-routable addresses are not reliable in
    sandboxes (some proxy them), so a listener with a full backlog plays that part: the
    kernel drops further SYNs and connecting hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    await asyncio.sleep(0.05)
    pool = H1Pool(0.2)
    try:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await pool.post("up", f"http://127.0.0.1:{port}/v1", BODY, HEADERS)
    finally:
        await pool.aclose()
        for sock in [*fillers, listener]:
            sock.close()
    assert caught.value.status_code == 503
    assert caught.value.message == "up: could not connect in time"


async def test_read_timeout_is_504() -> None:
    calls = 0

    async def stalls(writer: Writer, index: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # the stream: a head and one piece, then nothing
            writer.write(STREAM_HEAD + chunk(b"data: 1\n\n"))
        await asyncio.sleep(1)

    pool = H1Pool(0.2)
    async with serve(stalls) as upstream:
        with pytest.raises(UpstreamTimeoutError) as before_head:
            await pool.post("up", upstream.url, BODY, HEADERS)
        pieces: list[bytes] = []
        with pytest.raises(UpstreamTimeoutError) as mid_stream:
            await collect(pool.stream("up", upstream.url, BODY, HEADERS), pieces)
    await pool.aclose()
    assert before_head.value.status_code == mid_stream.value.status_code == 504
    assert pieces == [b"data: 1\n\n"]


# cancellation


async def _open_ended(writer: Writer, index: int) -> None:
    """A stream that goes on (for 5 s) until the client hangs up."""
    writer.write(STREAM_HEAD + chunk(b"data: 1\n\n"))
    for _ in range(250):
        await writer.drain()  # raises once the client has closed the connection
        await asyncio.sleep(0.02)
        writer.write(chunk(b": keep-alive\n\n"))


async def test_closing_a_stream_early_closes_its_connection(pool: H1Pool) -> None:
    async with serve(_open_ended) as upstream:
        pieces = pool.stream("up", upstream.url, BODY, HEADERS)
        assert await anext(pieces) == b"data: 1\n\n"
        await pieces.aclose()
        await asyncio.wait_for(upstream.client_closed.wait(), 2)


async def test_cancelling_a_stream_closes_its_connection(pool: H1Pool) -> None:
    first = asyncio.Event()

    async def consume(url: str) -> None:
        async for _ in pool.stream("up", url, BODY, HEADERS):
            first.set()

    async with serve(_open_ended) as upstream:
        task = asyncio.create_task(consume(upstream.url))
        await asyncio.wait_for(first.wait(), 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(upstream.client_closed.wait(), 2)


# the bound on connections


async def test_a_full_pool_waits_then_proceeds() -> None:
    async def slow(writer: Writer, index: int) -> None:
        await asyncio.sleep(0.1)
        writer.write(response(b"{}"))

    pool = H1Pool(5.0, max_connections=2)
    async with serve(slow) as upstream:
        bodies = await asyncio.gather(
            *(pool.post("up", upstream.url, BODY, HEADERS) for _ in range(6))
        )
    await pool.aclose()
    assert bodies == [b"{}"] * 6
    assert (upstream.connections, upstream.most_open) == (2, 2)


async def test_a_full_pool_gives_up_after_the_connect_timeout() -> None:
    async def trickle(writer: Writer, index: int) -> None:
        writer.write(STREAM_HEAD)
        for _ in range(20):
            writer.write(chunk(b"data: .\n\n"))
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")

    pool = H1Pool(0.3, max_connections=1)
    async with serve(trickle) as upstream:
        holder = pool.stream("up", upstream.url, BODY, HEADERS)
        await anext(holder)
        with pytest.raises(UpstreamUnavailableError) as caught:
            await pool.post("up", upstream.url, BODY, HEADERS)
        await holder.aclose()
    await pool.aclose()
    assert caught.value.message == "up: too many requests in flight"


# TLS, IPv6, proxies


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_round_trip_with_httpx_trust_settings(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # read by httpx.create_ssl_context
    pool = H1Pool(5.0)
    async with serve(_chunked, tls=server_tls) as upstream:
        assert upstream.url.startswith("https://")
        assert await pool.post("up", upstream.url, BODY, HEADERS) == b'{"a":1}'
        assert b"".join(await collect(pool.stream("up", upstream.url, BODY, HEADERS))) == (
            b'{"a":1}'
        )
    await pool.aclose()
    assert upstream.connections == 1


async def test_untrusted_certificate_is_503(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    pool = H1Pool(5.0)
    async with serve(ok, tls=server_tls) as upstream:
        with pytest.raises(UpstreamUnavailableError) as caught:
            await pool.post("up", upstream.url, BODY, HEADERS)
    await pool.aclose()
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_ipv6_literal(pool: H1Pool) -> None:
    async with serve(ok, host="::1") as upstream:
        assert upstream.url.startswith("http://[::1]:")
        assert await pool.post("up", upstream.url, BODY, HEADERS) == b'{"n":0}'
    assert b"host: [::1]:" in upstream.heads[0]


async def test_proxied_urls_go_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy configured, the provider leaves the pool and uses httpx (which honours
    the proxy): a host that does not resolve is reached through the proxy."""
    completion = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}
        ],
    }

    async def proxy(writer: Writer, index: int) -> None:
        writer.write(response(orjson.dumps(completion)))

    monkeypatch.delenv(TRANSPORT_ENV, raising=False)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    request = ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    async with serve(proxy) as upstream:
        monkeypatch.setenv("HTTP_PROXY", upstream.url.removesuffix("/v1/chat/completions"))
        provider = OpenAICompatibleProvider(base_url="http://upstream.invalid/v1", timeout=5)
        async with provider:
            answer = await provider.chat(request)
    assert answer.choices[0].message.content == "hi"
    assert upstream.heads[0].startswith(b"POST http://upstream.invalid/v1/chat/completions ")
