"""Validate request bodies, turning every mistake into a clear 400 naming the field."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..exceptions import InvalidRequestError

M = TypeVar("M", bound=BaseModel)

_TYPE_SEGMENT = re.compile(r"^(str|int|float|bool|list|dict|none|literal|function-.*)$|[\[\]'(]")
_TAGS = frozenset(
    {
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
        "function",
        "text",
        "image_url",
        "input_audio",
        "file",
        "refusal",
    }
)
_CODES = {
    "missing": "missing_required_parameter",
    "too_short": "empty_array",
    "less_than_equal": "above_max_value",
    "greater_than_equal": "below_min_value",
    "less_than": "above_max_value",
    "greater_than": "below_min_value",
}


def parse_request(model: type[M], body: bytes) -> M:
    """Validate a JSON body against a wire model, naming the offending field on failure."""
    if not body:
        raise InvalidRequestError("The request body is empty; expected a JSON object")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> InvalidRequestError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] in ("json_invalid", "model_type"):
        return InvalidRequestError(
            "We could not parse the JSON body of your request: expected a JSON object "
            f"({first['msg']})"
        )
    param = _param(first["loc"])
    message = first["msg"]
    if first["type"] == "missing":
        message = f"Missing required parameter: '{param}'"
    else:
        message = f"Invalid '{param}': {message[0].lower()}{message[1:]}"
        if "input" in first and not isinstance(first["input"], dict | list):
            message += f" (got {first['input']!r})"
    return InvalidRequestError(
        message, param=param, code=_CODES.get(first["type"], "invalid_value")
    )


def _param(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    previous: Any = None
    for segment in loc:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif _TYPE_SEGMENT.search(segment) or (isinstance(previous, int) and segment in _TAGS):
            pass
        else:
            parts.append(f".{segment}" if parts else segment)
        previous = segment
    return "".join(parts)
