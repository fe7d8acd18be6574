"""Redact request and response bodies before they are stored in the request log.

Secrets are found by shape (API keys, bearer tokens, JWTs) anywhere in a string; the
configured field names are blanked wherever they occur in the JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

REDACTED = "[REDACTED]"
_SECRET = re.compile(
    r"(sk-[A-Za-z0-9_\-]{16,}"  # OpenAI-style and our own sk-sym- keys, sk-ant- keys
    r"|(?i:bearer)\s+[A-Za-z0-9._\-+/=]{16,}"
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # JWTs
    r"|AKIA[0-9A-Z]{16})"  # AWS access key ids
)
_ALWAYS = frozenset({"api_key", "api-key", "authorization", "password", "secret", "x-api-key"})


class Redactor:
    """Turns a body into the redacted JSON text that is stored."""

    def __init__(self, fields: Iterable[str] = (), *, max_chars: int = 64_000) -> None:
        self.fields = frozenset(f.lower() for f in fields) | _ALWAYS
        self.max_chars = max_chars

    def __call__(self, body: Any) -> str:
        if isinstance(body, bytes | str):
            try:
                body = orjson.loads(body)
            except orjson.JSONDecodeError:
                return self._text(body if isinstance(body, str) else body.decode(errors="replace"))
        text = orjson.dumps(self._value(body)).decode()
        return text if len(text) <= self.max_chars else text[: self.max_chars] + "…[truncated]"

    def _value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: REDACTED if k.lower() in self.fields else self._value(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._value(v) for v in value]
        if isinstance(value, str):
            return self._text(value)
        return value

    def _text(self, text: str) -> str:
        return _SECRET.sub(REDACTED, text)
