"""Shared fixtures: gateways built from config text, fake upstreams on real sockets."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from symbiosis.config import GatewayConfig
from symbiosis.demo.fake_upstream import FakeUpstream
from symbiosis.gateway import create_app
from symbiosis.providers.registry import _plugins
from symbiosis.server import serve_in_thread
from symbiosis.settings import Settings

from ._db import (  # noqa: F401 - database fixtures, on SQLite and PostgreSQL
    database_url,
    key_service,
    migrated_url,
    postgres_template,
    postgres_url,
    sqlite_template,
    static_keys,
)

TEST_KEY = "sk-sym-test-suite-key-0123456789abcdefghijklmnopqrstuv"

MakeApp = Callable[..., FastAPI]


def config_for(upstream_base_url: str, *, provider_type: str = "openai_compatible") -> str:
    """A config with one chat model and one embeddings model behind ``upstream_base_url``."""
    return f"""
    [providers.up]
    type = "{provider_type}"
    base_url = "{upstream_base_url}"
    api_key = "sk-upstream"

    [[models]]
    name = "chat-model"
    provider = "up"
    model = "upstream-chat"

    [[models]]
    name = "embed-model"
    provider = "up"
    model = "upstream-embed"
    """


@pytest.fixture
def make_app() -> MakeApp:
    """Build a gateway app from config text; extra keyword arguments go to create_app.

    Unless ``keys`` is given, the gateway knows ``TEST_KEY`` (in memory, all models).
    """

    def build(config_text: str, *, settings: Settings | None = None, **kwargs: Any) -> FastAPI:
        config = GatewayConfig.parse(config_text, source="test.toml", environ={})
        kwargs.setdefault("keys", static_keys([TEST_KEY]))
        return create_app(settings or Settings(), config=config, **kwargs)

    return build


@pytest.fixture
def fake_upstream() -> FakeUpstream:
    return FakeUpstream(chunks=5)


@pytest.fixture
def upstream_url(fake_upstream: FakeUpstream) -> Iterator[str]:
    """The fake upstream served on a real socket; its OpenAI base URL."""
    with serve_in_thread(fake_upstream) as url:
        yield f"{url}/v1"


@pytest.fixture
def gateway_url(make_app: MakeApp, upstream_url: str) -> Iterator[str]:
    """A gateway on a real socket in front of the fake upstream."""
    with serve_in_thread(make_app(config_for(upstream_url))) as url:
        yield url


@pytest.fixture
def sync_client(gateway_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=TEST_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
async def async_client(gateway_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key=TEST_KEY, max_retries=0)


def asgi_client(app: FastAPI) -> openai.AsyncOpenAI:
    """The official async SDK talking to ``app`` in-process (no socket)."""
    transport = httpx.ASGITransport(app=app)
    http_client = httpx.AsyncClient(transport=transport, base_url="http://gateway")
    return openai.AsyncOpenAI(
        base_url="http://gateway/v1", api_key=TEST_KEY, max_retries=0, http_client=http_client
    )


@pytest.fixture(autouse=True)
def _httpx_transport_for_httpx_mock(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-httpx fakes httpx's own transport: providers built in such a test use it."""
    if "httpx_mock" in request.fixturenames:
        monkeypatch.setenv("SYMBIOSIS_HTTP_TRANSPORT", "httpx")


InstallPlugin = Callable[[str, str], None]


@pytest.fixture
def install_plugin(tmp_path: Path) -> Iterator[InstallPlugin]:
    """Install a provider plug-in: a real distribution on sys.path with a
    ``symbiosis.providers`` entry point ``type_name`` naming the class ``Plugin``
    defined by ``source``."""
    modules: list[str] = []

    def install(type_name: str, source: str) -> None:
        module = f"plugin_{type_name}"
        (tmp_path / f"{module}.py").write_text(source)
        dist = tmp_path / f"{module}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(
            f"[symbiosis.providers]\n{type_name} = {module}:Plugin\n"
        )
        modules.append(module)
        _plugins.cache_clear()

    sys.path.insert(0, str(tmp_path))
    yield install
    sys.path.remove(str(tmp_path))
    for module in modules:
        sys.modules.pop(module, None)
    _plugins.cache_clear()
