"""The examples in examples/ run as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from symbiosis.config import GatewayConfig

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
