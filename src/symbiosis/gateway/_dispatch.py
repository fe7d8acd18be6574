"""The model routes' own ASGI dispatch: one layer between uvicorn and the handler.

Model calls are the gateway's hot path. Starlette's stack (error middleware, our three
middlewares, the router, ``Request``/``Response`` objects, an anyio task group per
stream) cost about as much CPU as the rest of a request together
(docs/benchmarks.md), so ``POST`` to a model route skips it: ``ModelDispatch`` gives
the request its id, starts the gateway on first use, checks the key exactly as
``SymbiosisMiddleware`` does, reads the body and sends the handler's ``Reply`` straight
onto ASGI ``send``. Everything else (health, models list, docs) goes through FastAPI.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING

import orjson
from starlette.types import Receive, Scope, Send

from ..exceptions import RequestTooLargeError, SymbiosisError
from ..middleware.auth import SCOPE_KEY, route_path, verified_key
from ..middleware.request_id import SCOPE_KEY as SCOPE_REQUEST_ID
from ..middleware.request_id import incoming_request_id, new_request_id
from ..services.keys import KeyContext, bound_key
from ..services.usage import UsageEvent

if TYPE_CHECKING:
    from .runtime import Gateway

log = logging.getLogger("symbiosis.gateway")

_JSON = (b"content-type", b"application/json")
_CLIENT_HEADERS = frozenset((b"user-agent", b"x-symbiosis-client", b"x-symbiosis-end-user"))
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")


class ClientGone(Exception):
    """The client hung up before its request body arrived: there is no one to answer."""


class FinalFrame(bytes):
    """The last piece of a stream: sent together with the end of the response."""


@dataclass(slots=True)
class Call:
    """One model request as a handler sees it: the scope, the checked key, the body.

    ``logged`` is set once the call's request-log record exists (``new_event``); a call
    refused before that is logged by the dispatch.
    """

    scope: Scope
    request_id: str
    key: KeyContext | None
    body: bytes
    logged: bool = False

    def record(self, model: str, *, stream: bool, user: str | None) -> UsageEvent:
        """This call's request-log record, with the client's metadata filled in."""
        self.logged = True  # from here on the metering settles and logs the record
        found: dict[bytes, str] = {}
        for name, value in self.scope["headers"]:
            if name in _CLIENT_HEADERS and name not in found:
                found[name] = value.decode("latin-1")
        return UsageEvent(
            self.request_id,
            model,
            stream=stream,
            end_user=found.get(b"x-symbiosis-end-user") or user,
            client=found.get(b"x-symbiosis-client"),
            user_agent=found.get(b"user-agent"),
        )

    def header(self, name: bytes) -> str | None:
        """The first value of a request header (``name`` in lower case)."""
        for key, value in self.scope["headers"]:
            if key == name:
                return value.decode("latin-1")
        return None

    def header_values(self, name: bytes) -> list[str]:
        return [v.decode("latin-1") for k, v in self.scope["headers"] if k == name]


@dataclass(slots=True)
class JSONReply:
    """A complete JSON answer (success or error)."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200

    async def send(self, send: Send, receive: Receive, request_id: bytes) -> None:
        headers = [_JSON, (b"content-length", b"%d" % len(self.body))]
        headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items())
        headers.append((b"x-request-id", request_id))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


@dataclass(slots=True)
class StreamReply:
    """An SSE answer relayed piece by piece as ``frames`` yields them.

    A ``FinalFrame`` ends the response in the same write. The client hanging up
    cancels the relay at once (a watcher on ``receive``) and closes ``frames``, so its
    ``finally`` settles the call; without that, a silent upstream would hold the
    connection until its next chunk.
    """

    frames: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)

    async def send(self, send: Send, receive: Receive, request_id: bytes) -> None:
        headers = [_SSE]
        headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items())
        headers.append((b"x-request-id", request_id))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        watch = _DisconnectWatch(receive)
        try:
            ended = False
            async for piece in self.frames:
                ended = type(piece) is FinalFrame
                await send({"type": "http.response.body", "body": piece, "more_body": not ended})
                if ended:
                    break
            if not ended:
                await send({"type": "http.response.body", "body": b""})
        except asyncio.CancelledError:
            if not watch.client_gone:
                raise
            watch.absorb_cancel()
        finally:
            watch.stop()
            await self.frames.aclose()  # type: ignore[attr-defined]


class _DisconnectWatch:
    """Cancels the current task when the client disconnects mid-response."""

    __slots__ = ("_task", "_waiter", "client_gone")

    def __init__(self, receive: Receive) -> None:
        self.client_gone = False
        self._task = asyncio.current_task()
        self._waiter: asyncio.Future[object] | None = asyncio.ensure_future(receive())
        self._waiter.add_done_callback(self._on_message)

    def _on_message(self, waiter: asyncio.Future[object]) -> None:
        if self._waiter is None or waiter.cancelled() or waiter.exception() is not None:
            return
        message = waiter.result()
        if isinstance(message, dict) and message.get("type") == "http.disconnect":
            self.client_gone = True
            if self._task is not None:
                self._task.cancel()

    def absorb_cancel(self) -> None:
        if self._task is not None:
            self._task.uncancel()

    def stop(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.cancel()


Reply = JSONReply | StreamReply
Handler = Callable[[Call], Awaitable[Reply]]
ErrorRenderer = Callable[[SymbiosisError, str], JSONReply]


def openai_error(exc: SymbiosisError, request_id: str) -> JSONReply:
    """The OpenAI error JSON, with the error's own headers (``Retry-After``, limits)."""
    return JSONReply(exc.to_json(), exc.headers(), exc.status_code)


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """A ``POST`` route on the hot path, with the error shape its clients expect."""

    path: str
    handler: Handler
    render_error: ErrorRenderer = openai_error


class ModelDispatch:
    """Serves ``POST`` to the model routes without Starlette's stack."""

    def __init__(self, gateway: Gateway, routes: list[ModelRoute]) -> None:
        self._gateway = gateway
        self._routes = {route.path: route for route in routes}
        self._limit = gateway.settings.max_request_bytes

    def match(self, scope: Scope) -> ModelRoute | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        return self._routes.get(route_path(scope))

    async def serve(self, route: ModelRoute, scope: Scope, receive: Receive, send: Send) -> None:
        started = perf_counter()
        request_id = incoming_request_id(scope) or new_request_id()
        scope[SCOPE_REQUEST_ID] = request_id
        gateway = self._gateway
        if not gateway.started:
            await gateway.start()
        try:
            key = scope[SCOPE_KEY] = await verified_key(gateway.keys, scope)
        except SymbiosisError as exc:
            await route.render_error(exc, request_id).send(send, receive, request_id.encode())
            return
        with bound_key(key):
            call = Call(scope, request_id, key, b"")
            try:
                call.body = await read_body(scope, receive, self._limit)
                reply = await route.handler(call)
            except ClientGone:
                return
            except SymbiosisError as exc:
                if not call.logged:
                    self._log_refused(call, exc, started)
                reply = route.render_error(exc, request_id)
            except Exception:
                log.exception("unhandled error in request %s", request_id)
                error = SymbiosisError(f"Internal error (request id {request_id})")
                if not call.logged:
                    self._log_refused(call, error, started)
                reply = route.render_error(error, request_id)
            await reply.send(send, receive, request_id.encode())

    def _log_refused(self, call: Call, error: SymbiosisError, started: float) -> None:
        """A call refused before it had a record (malformed body, unknown or forbidden
        model): logged with the model it asked for, when the body names one.

        Calls without a valid key are not logged: anyone could fill the log with them.
        """
        event = call.record(_asked_model(call.body) or "-", stream=False, user=None)
        if call.key is not None:  # the metering sets these on calls it admits
            event.key_id, event.project_id = call.key.key_id, call.key.project_id
        event.status, event.error_type = error.status_code, error.error_type
        event.latency_ms = (perf_counter() - started) * 1000
        self._gateway.metering.recorder.record(event)


def _asked_model(body: bytes) -> str | None:
    try:
        model = orjson.loads(body).get("model") if body else None
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return model if isinstance(model, str) and model else None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, refusing early (413) when it is larger than ``limit`` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise _too_large(limit)
            break
    message = await receive()
    if message["type"] != "http.request":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise _too_large(limit)
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(f"Request body is larger than the limit of {limit} bytes")
