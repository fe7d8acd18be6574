"""RPM and TPM limits through the gateway, with OpenAI's rate-limit headers."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from symbiosis.config import GatewayConfig
from symbiosis.gateway import create_app
from symbiosis.settings import Settings

from ._support import create_key, in_process_client, metered_config

PROMPT = [{"role": "user", "content": "hi"}]


@pytest.fixture
def app(migrated_url: str, upstream_url: str, tmp_path: Path):
    config = GatewayConfig.parse(metered_config(upstream_url, tmp_path / "spool"))
    return create_app(Settings(database_url=migrated_url), config=config)


async def test_rpm_limit_of_a_key(app, migrated_url: str) -> None:
    created = await create_key(migrated_url, rpm_limit=2)
    client = in_process_client(app, created.secret)
    remaining = []
    for _ in range(2):
        raw = await client.chat.completions.with_raw_response.create(
            model="chat-model", messages=PROMPT
        )
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
        remaining.append(raw.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["1", "0"]
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="chat-model", messages=PROMPT)
    error = caught.value
    assert error.code == "rate_limit_exceeded"
    assert error.body["type"] == "rate_limit_error"
    headers = error.response.headers
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith("s")


async def test_tpm_limit_counts_estimates_and_real_usage(app, migrated_url: str) -> None:
    created = await create_key(migrated_url, tpm_limit=100)
    client = in_process_client(app, created.secret)
    raw = await client.chat.completions.with_raw_response.create(
        model="chat-model", messages=PROMPT, max_tokens=40
    )
    assert raw.headers["x-ratelimit-limit-tokens"] == "100"
    used = raw.parse().usage.total_tokens
    with pytest.raises(openai.RateLimitError) as caught:
        # the estimate of this one (prompt + 90 output tokens) does not fit beside `used`
        await client.chat.completions.create(model="chat-model", messages=PROMPT, max_tokens=90)
    assert caught.value.response.headers["x-ratelimit-limit-tokens"] == "100"
    assert used < 100


async def test_project_limit_is_shared_by_its_keys(app, migrated_url: str) -> None:
    first = await create_key(migrated_url, project_options={"rpm_limit": 3})
    keys = [first.secret]
    from symbiosis.services.keys import KeyService

    service = KeyService.from_url(migrated_url)
    keys.append((await service.create_key("team", actor="test")).secret)
    await service.aclose()
    clients = [in_process_client(app, secret) for secret in keys]
    for i in range(3):
        await clients[i % 2].chat.completions.create(model="chat-model", messages=PROMPT)
    with pytest.raises(openai.RateLimitError, match="project"):
        await clients[1].chat.completions.create(model="chat-model", messages=PROMPT)
