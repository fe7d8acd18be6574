"""Streams pass through chunk by chunk: nothing waits for the upstream to finish."""

from __future__ import annotations

import time

import openai

from symbiosis.demo.fake_upstream import FakeUpstream
from symbiosis.server import serve_in_thread

from ..conftest import TEST_KEY, MakeApp, config_for

CHUNK_DELAY = 0.25
CHUNKS = 6


def test_first_chunk_arrives_before_upstream_sends_the_last(make_app: MakeApp) -> None:
    upstream = FakeUpstream(chunks=CHUNKS, chunk_delay=CHUNK_DELAY)
    with (
        serve_in_thread(upstream) as upstream_url,
        serve_in_thread(make_app(config_for(f"{upstream_url}/v1"))) as gateway_url,
        openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=TEST_KEY, max_retries=0) as client,
    ):
        started = time.monotonic()
        arrivals: list[float] = []
        stream = client.chat.completions.create(
            model="chat-model", messages=[{"role": "user", "content": "slow"}], stream=True
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrivals.append(time.monotonic() - started)

    assert len(arrivals) == CHUNKS
    upstream_total = CHUNKS * CHUNK_DELAY
    # The first content chunk is sent by the upstream after one delay; a buffering
    # gateway would deliver it only after all of them.
    assert arrivals[0] < upstream_total - 2 * CHUNK_DELAY
    # And chunks keep arriving spread out, as the upstream sends them.
    assert arrivals[-1] - arrivals[0] >= (CHUNKS - 2) * CHUNK_DELAY
