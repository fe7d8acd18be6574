"""Render a ``SymbiosisError`` as the OpenAI error JSON, straight onto an ASGI ``send``."""

from __future__ import annotations

from starlette.types import Send

from ..exceptions import SymbiosisError


def error_headers(exc: SymbiosisError) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json")]
    headers.extend((k.encode(), v.encode()) for k, v in exc.headers().items())
    return headers


async def send_error(send: Send, exc: SymbiosisError) -> None:
    """Answer with ``exc`` before any response has started."""
    body = exc.to_json()
    headers = error_headers(exc)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
