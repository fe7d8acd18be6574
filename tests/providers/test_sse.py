"""The SSE decoder, fed bytes split anywhere, yields the events a server meant."""

from __future__ import annotations

import pytest

from symbiosis.providers._sse import ServerSentEvent, SSEDecoder

STREAM = (
    b": keep-alive comment\n\n"
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b"data: line one\ndata: line two\n\n"
    b"id: 7\ndata:no-space\n\n"
    b"data: [DONE]"
)
EXPECTED = [
    ServerSentEvent(data='{"a": 1}', event="message_start"),
    ServerSentEvent(data="line one\nline two"),
    ServerSentEvent(data="no-space", id="7"),
    ServerSentEvent(data="[DONE]", id="7"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_events_survive_any_split(size: int) -> None:
    decoder = SSEDecoder()
    events = []
    for start in range(0, len(STREAM), size):
        events += decoder.feed(STREAM[start : start + size])
    events += decoder.flush()
    assert events == EXPECTED


def test_utf8_split_inside_a_character() -> None:
    data = "data: héllo ✓\n\n".encode()
    decoder = SSEDecoder()
    events = [e for i in range(len(data)) for e in decoder.feed(data[i : i + 1])]
    assert events == [ServerSentEvent(data="héllo ✓")]
