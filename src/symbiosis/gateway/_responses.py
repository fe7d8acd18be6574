"""Fast response bodies: pydantic serialises straight to bytes, SSE frames are joined once."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import Response

from ..exceptions import SymbiosisError

SSE_DONE = b"data: [DONE]\n\n"


def json_bytes(model: BaseModel) -> bytes:
    return model.__pydantic_serializer__.to_json(model)


def json_response(model: BaseModel, headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(model), media_type="application/json", headers=headers)


def sse_frame(model: BaseModel) -> bytes:
    return sse_data(json_bytes(model))


def sse_data(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


def sse_error(exc: SymbiosisError) -> bytes:
    return sse_data(exc.to_json())


def error_response(exc: SymbiosisError) -> Response:
    return Response(
        exc.to_json(),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers(),
    )
