"""Give every HTTP response an ``x-request-id``, reusing a sane one the client sent."""

from __future__ import annotations

import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCOPE_KEY = "symbiosis.request_id"
_ACCEPTABLE = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id() -> str:
    return "req_" + os.urandom(12).hex()


def request_id_of(scope: Scope) -> str:
    """The id of the request in ``scope`` (set by ``RequestIdMiddleware``)."""
    request_id = scope.get(SCOPE_KEY)
    if request_id is None:
        request_id = scope[SCOPE_KEY] = new_request_id()
    return request_id


def incoming_request_id(scope: Scope) -> str | None:
    """The client's own ``x-request-id``, when it is a sane one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode() if _ACCEPTABLE.match(value) else None
    return None


class RequestIdMiddleware:
    """Pure ASGI: stores the id in the scope and adds the header on the way out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope[SCOPE_KEY] = incoming_request_id(scope) or new_request_id()
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
