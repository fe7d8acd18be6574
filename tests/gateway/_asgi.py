"""Drive the gateway's ASGI app by hand, to see each body write it makes."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp


async def body_writes(
    app: ASGIApp, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> list[dict[str, Any]]:
    """The ``http.response.body`` messages the app sends for one POST, in order.

    The client stays connected until the app is done, as a real one would.
    """
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop()
        await asyncio.sleep(3600)
        raise AssertionError("the client never hangs up")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 1), "server": None,
        "headers": [(b"content-type", b"application/json"), *headers],
    }  # fmt: skip
    await app(scope, receive, send)
    return [m for m in sent if m["type"] == "http.response.body"]
