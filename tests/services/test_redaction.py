"""Stored bodies never keep secrets, nor the fields an operator chose to hide."""

from __future__ import annotations

import orjson

from symbiosis.services.redaction import REDACTED, Redactor


def test_secrets_are_found_by_shape_anywhere() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "my key is sk-sym-abcdefghijklmnopqrstuvwxyz0123 ok"},
            {"role": "user", "content": "Authorization: Bearer abcdefghijklmnop1234"},
        ],
        "metadata": {
            "api_key": "anything",
            "note": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlMTIz",
        },
    }
    stored = orjson.loads(Redactor()(orjson.dumps(body)))
    assert stored["messages"][0]["content"] == f"my key is {REDACTED} ok"
    assert stored["messages"][1]["content"] == f"Authorization: {REDACTED}"
    assert stored["metadata"] == {"api_key": REDACTED, "note": REDACTED}
    assert stored["model"] == "m"


def test_configured_fields_are_blanked_at_any_depth() -> None:
    body = {"user": "alice@example.com", "messages": [{"role": "user", "content": "hi"}]}
    stored = orjson.loads(Redactor(["content", "user"])(body))
    assert stored == {"user": REDACTED, "messages": [{"role": "user", "content": REDACTED}]}


def test_long_bodies_are_truncated_and_non_json_is_kept_as_text() -> None:
    assert Redactor(max_chars=20)({"text": "x" * 100}).endswith("…[truncated]")
    assert Redactor()(b"not json sk-abcdefghijklmnopqrstu") == f"not json {REDACTED}"
