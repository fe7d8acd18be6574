"""Every request is logged, with the client's metadata, and bodies only when asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from sqlalchemy import select

from symbiosis.config import GatewayConfig
from symbiosis.gateway import create_app
from symbiosis.services.keys import CreatedKey
from symbiosis.settings import Settings
from symbiosis.store.engine import create_engine, create_sessionmaker
from symbiosis.store.tables import RequestLog

from ._support import create_key, in_process_client, metered_config


async def _logs(database_url: str) -> list[RequestLog]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(
                (await session.execute(select(RequestLog).order_by(RequestLog.at))).scalars()
            )
    finally:
        await engine.dispose()


async def _metered_gateway(
    migrated_url: str, upstream_url: str, tmp_path: Path
) -> tuple[Any, CreatedKey, openai.AsyncOpenAI]:
    """A metered gateway on ``migrated_url``, a key for ``chat-model`` and its client."""
    config = GatewayConfig.parse(metered_config(upstream_url, tmp_path / "spool"))
    app = create_app(Settings(database_url=migrated_url), config=config)
    created = await create_key(migrated_url, name="ci", models=["chat-model"])
    return app, created, in_process_client(app, created.secret)


async def test_requests_are_logged_with_client_metadata(
    migrated_url: str, upstream_url: str, tmp_path: Path
) -> None:
    app, created, client = await _metered_gateway(migrated_url, upstream_url, tmp_path)
    headers = {"x-symbiosis-client": "billing-service", "x-symbiosis-end-user": "u-42"}
    await client.chat.completions.create(
        model="chat-model", messages=[{"role": "user", "content": "hi"}], extra_headers=headers
    )
    stream = await client.chat.completions.create(
        model="chat-model",
        messages=[{"role": "user", "content": "stream"}],
        stream=True,
        user="alice",
    )
    async for _ in stream:
        pass
    await app.state.gateway.aclose()

    plain, streamed = await _logs(migrated_url)
    assert (plain.status, plain.client, plain.end_user) == (200, "billing-service", "u-42")
    assert plain.user_agent.startswith("AsyncOpenAI/Python")
    assert (plain.key_id, plain.project_id) == (created.key.id, created.key.project_id)
    assert (plain.provider, plain.upstream_model) == ("up", "upstream-chat")
    assert plain.input_tokens > 0
    assert plain.output_tokens == 12
    assert plain.cost_usd > 0
    assert plain.ttft_ms is None
    assert plain.request_body is None  # bodies are off by default
    assert streamed.end_user == "alice"
    assert streamed.ttft_ms is not None
    assert 0 < streamed.ttft_ms <= streamed.latency_ms
    assert streamed.output_tokens == 5  # usage recorded although the client did not ask


async def test_bodies_are_stored_redacted_when_configured(
    migrated_url: str, upstream_url: str, tmp_path: Path
) -> None:
    extra = 'store_bodies = true\nredact_fields = ["user"]'
    config = GatewayConfig.parse(metered_config(upstream_url, tmp_path / "spool", extra))
    app = create_app(Settings(database_url=migrated_url), config=config)
    created = await create_key(migrated_url)
    client = in_process_client(app, created.secret)
    secret = "sk-live-0123456789abcdefghijklmnop"
    await client.chat.completions.create(
        model="chat-model",
        messages=[{"role": "user", "content": f"my key is {secret}"}],
        user="alice@example.com",
    )
    await app.state.gateway.aclose()
    (log,) = await _logs(migrated_url)
    stored = orjson.loads(log.request_body)
    assert stored["user"] == "[REDACTED]"
    assert stored["messages"][0]["content"] == "my key is [REDACTED]"
    assert secret not in log.response_body
    assert orjson.loads(log.response_body)["choices"][0]["message"]["role"] == "assistant"


async def test_unknown_price_is_served_logged_and_warned_once(
    migrated_url: str, upstream_url: str, tmp_path: Path, caplog
) -> None:
    text = metered_config(upstream_url, tmp_path / "spool") + (
        '\n[[models]]\nname = "mystery"\nprovider = "up"\nmodel = "no-such-model-anywhere"\n'
    )
    with caplog.at_level("WARNING", logger="symbiosis.pricing"):
        app = create_app(Settings(database_url=migrated_url), config=GatewayConfig.parse(text))
        created = await create_key(migrated_url)
        client = in_process_client(app, created.secret)
        for _ in range(2):
            raw = await client.chat.completions.with_raw_response.create(
                model="mystery", messages=[{"role": "user", "content": "?"}]
            )
            assert "x-symbiosis-cost" not in raw.headers
        await app.state.gateway.aclose()
    warnings = [r for r in caplog.records if "no-such-model-anywhere" in r.getMessage()]
    assert len(warnings) == 1
    logs = await _logs(migrated_url)
    assert [(log.status, log.cost_usd) for log in logs] == [(200, None), (200, None)]
    assert logs[0].output_tokens == 12


async def test_a_client_reusing_its_request_id_gets_a_row_per_call(
    migrated_url: str, upstream_url: str, tmp_path: Path
) -> None:
    """A retry with the same x-request-id is a second call, billed and logged again."""
    app, _, client = await _metered_gateway(migrated_url, upstream_url, tmp_path)
    for _ in range(2):
        await client.chat.completions.create(
            model="chat-model",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-request-id": "trace-7"},
        )
    await app.state.gateway.aclose()

    rows = await _logs(migrated_url)
    assert [row.request_id for row in rows] == ["trace-7", "trace-7"]
    assert rows[0].at < rows[1].at


async def test_calls_refused_before_a_model_is_chosen_are_logged_once_the_key_is_known(
    migrated_url: str, upstream_url: str, tmp_path: Path
) -> None:
    app, created, client = await _metered_gateway(migrated_url, upstream_url, tmp_path)
    stranger = in_process_client(app, "sk-sym-not-a-key")
    hello = [{"role": "user", "content": "x"}]
    for call in (
        client.chat.completions.create(model="no-such-model", messages=hello),
        client.chat.completions.create(model="chat-model", messages=[]),
        stranger.chat.completions.create(model="chat-model", messages=hello),
    ):
        with pytest.raises(openai.APIStatusError):
            await call
    await app.state.gateway.aclose()

    rows = await _logs(migrated_url)
    assert [(r.model, r.status, r.error_type) for r in rows] == [
        ("no-such-model", 404, "invalid_request_error"),
        ("chat-model", 400, "invalid_request_error"),
    ]  # the call without a valid key is not logged: anyone could send those
    assert {r.key_id for r in rows} == {created.key.id}
    assert all(r.cost_usd is None and r.input_tokens == 0 for r in rows)
