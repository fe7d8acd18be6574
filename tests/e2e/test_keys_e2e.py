"""Virtual keys end to end: the official OpenAI SDK against the gateway, on both databases.

The gateway runs in-process (no lifespan, so its key service starts on first use) with a
SQL key service on SQLite or PostgreSQL; the upstream is the fake on a real socket.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from symbiosis.gateway import create_app
from symbiosis.services.keys import KeyService
from symbiosis.settings import Settings

from ..conftest import MakeApp, config_for

HEADERS = ["authorization", "api-key", "x-api-key"]
MESSAGES = [{"role": "user", "content": "hi"}]


@dataclass
class Keyed:
    app: FastAPI
    keys: KeyService
    clock: list[float]
    full: str
    limited: str
    limited_id: str
    full_id: str

    def client(
        self, secret: str | None, header: str = "authorization"
    ) -> tuple[openai.AsyncOpenAI, dict[str, Any]]:
        """The SDK, and the ``extra_headers`` that put ``secret`` in ``header`` (None: no key).

        ``Omit()`` stops the SDK from sending its own ``Authorization``, as a client of the
        Azure (``api-key``) or Anthropic (``x-api-key``) kind would not.
        """
        extra: dict[str, Any] = {}
        if header != "authorization" or secret is None:
            extra["Authorization"] = openai.Omit()
            if secret is not None:
                extra[header] = secret
        transport = httpx.ASGITransport(app=self.app)
        client = openai.AsyncOpenAI(
            base_url="http://gateway/v1",
            api_key=secret or "unused",
            max_retries=0,
            http_client=httpx.AsyncClient(transport=transport, base_url="http://gateway"),
        )
        return client, extra


@pytest.fixture
async def keyed(migrated_url: str, upstream_url: str, make_app: MakeApp) -> AsyncIterator[Keyed]:
    clock = [time.time()]
    keys = KeyService.from_url(migrated_url, poll_interval=0.1, clock=lambda: clock[0])
    await keys.create_project("acme", actor="test")
    full = await keys.create_key("acme", name="full", actor="test")
    limited = await keys.create_key("acme", models=["embed-model"], actor="test")
    app = make_app(config_for(upstream_url), keys=keys)
    yield Keyed(app, keys, clock, full.secret, limited.secret, limited.key.id, full.key.id)
    await keys.aclose()


async def test_a_valid_key_in_each_header(keyed: Keyed) -> None:
    for header in HEADERS:
        client, extra = keyed.client(keyed.full, header)
        completion = await client.chat.completions.create(
            model="chat-model", messages=MESSAGES, extra_headers=extra
        )
        assert (completion.choices[0].message.content or "").startswith("Echo: hi")
        models = await client.models.list(extra_headers=extra)
        assert [m.id for m in models.data] == ["chat-model", "embed-model"]
    assert keyed.keys.started  # started by the first request: nothing ran a lifespan


async def test_unknown_key_is_401_in_each_header(keyed: Keyed) -> None:
    for header in HEADERS:
        client, extra = keyed.client("sk-sym-not-a-key-of-this-gateway", header)
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(
                model="chat-model", messages=MESSAGES, extra_headers=extra
            )
        assert caught.value.status_code == 401
        assert caught.value.code == "invalid_api_key"
        assert caught.value.response.headers["x-request-id"].startswith("req_")


async def test_missing_key_is_401(keyed: Keyed) -> None:
    client, extra = keyed.client(None)
    with pytest.raises(openai.AuthenticationError, match="didn't provide an API key") as caught:
        await client.models.list(extra_headers=extra)
    assert caught.value.code == "invalid_api_key"


async def test_revoked_key_is_401_in_each_header(keyed: Keyed) -> None:
    clients = [keyed.client(keyed.full, header) for header in HEADERS]
    for client, extra in clients:
        await client.models.list(extra_headers=extra)
    await keyed.keys.revoke_key(keyed.full_id, actor="test")
    for client, extra in clients:
        with pytest.raises(openai.AuthenticationError, match="revoked") as caught:
            await client.chat.completions.create(
                model="chat-model", messages=MESSAGES, extra_headers=extra
            )
        assert caught.value.code == "invalid_api_key"


async def test_expired_key_is_401(keyed: Keyed) -> None:
    expires = datetime.fromtimestamp(keyed.clock[0], UTC) + timedelta(minutes=5)
    created = await keyed.keys.create_key("acme", expires_at=expires, actor="test")
    client, extra = keyed.client(created.secret, "api-key")
    await client.models.list(extra_headers=extra)
    keyed.clock[0] += 301
    with pytest.raises(openai.AuthenticationError, match="expired") as caught:
        await client.models.list(extra_headers=extra)
    assert caught.value.code == "invalid_api_key"


async def test_model_outside_the_key_is_403_in_each_header(keyed: Keyed) -> None:
    for header in HEADERS:
        client, extra = keyed.client(keyed.limited, header)
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await client.chat.completions.create(
                model="chat-model", messages=MESSAGES, extra_headers=extra
            )
        assert caught.value.status_code == 403
        assert caught.value.code == "model_not_allowed"
        embedding = await client.embeddings.create(
            model="embed-model", input="fine", extra_headers=extra
        )
        assert len(embedding.data) == 1


async def test_unknown_model_is_404_even_for_a_limited_key(keyed: Keyed) -> None:
    for secret in (keyed.full, keyed.limited):
        for header in HEADERS:
            client, extra = keyed.client(secret, header)
            with pytest.raises(openai.NotFoundError) as caught:
                await client.chat.completions.create(
                    model="no-such-model", messages=MESSAGES, extra_headers=extra
                )
            assert caught.value.code == "model_not_found"


async def test_models_lists_only_what_the_key_may_use(keyed: Keyed) -> None:
    for header in HEADERS:
        limited, extra = keyed.client(keyed.limited, header)
        assert [m.id for m in (await limited.models.list(extra_headers=extra)).data] == [
            "embed-model"
        ]
        full, extra = keyed.client(keyed.full, header)
        assert [m.id for m in (await full.models.list(extra_headers=extra)).data] == [
            "chat-model",
            "embed-model",
        ]


async def test_readiness_checks_the_database(database_url: str, upstream_url: str) -> None:
    app = create_app(Settings(database_url=database_url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        live = await http.get("/health/live")
        not_ready = await http.get("/health/ready")
        from symbiosis.store.migrate import upgrade

        await upgrade(database_url)
        ready = await http.get("/health/ready")
    await app.state.gateway.aclose()
    assert live.status_code == 200
    assert not_ready.status_code == 503
    assert "symbiosis db migrate" in not_ready.json()["problems"]["database"]
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": ["database"]}
