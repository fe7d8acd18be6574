"""The examples in examples/ run as documented."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from symbiosis.config import GatewayConfig
from symbiosis.gateway import create_app
from symbiosis.server import serve_in_thread
from symbiosis.settings import Settings
from symbiosis.store.migrate import upgrade

from ..conftest import config_for
from ..metering._support import create_key

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_provider_client_example(upstream_url: str) -> None:
    env = {**os.environ, "OPENAI_BASE_URL": upstream_url, "MODEL": "fake"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "provider_client.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "reply: Echo: Say hello" in result.stdout
    assert "tokens:" in result.stdout


def test_example_config_is_valid() -> None:
    environ = {
        name: "x" for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY")
    }
    config = GatewayConfig.load(EXAMPLES / "symbiosis.toml", environ=environ)
    assert {m.name for m in config.models} == {"gpt-4o-mini", "claude-sonnet", "llama"}


def test_sdk_examples_through_a_gateway(upstream_url: str, tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'examples.db'}"
    asyncio.run(upgrade(database))
    created = asyncio.run(create_key(database, rpm_limit=100))
    app = create_app(
        Settings(database_url=database),
        config=GatewayConfig.parse(config_for(upstream_url), environ={}),
    )
    with serve_in_thread(app) as url:
        env = {**os.environ, "SYMBIOSIS_URL": url, "SYMBIOSIS_KEY": created.secret}
        for script, expected in (
            ("openai_client.py", "requests left this minute: 99"),
            ("anthropic_client.py", "tokens in/out:"),
        ):
            result = subprocess.run(
                [sys.executable, str(EXAMPLES / script), "chat-model"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
            assert "reply: Echo: Say hello in five words" in result.stdout
            assert expected in result.stdout


def test_admin_script(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SYMBIOSIS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'admin.db'}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", str(EXAMPLES / "admin.sh")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "created project checkout" in result.stdout
    assert (tmp_path / "usage.csv").read_text().startswith("project,")
