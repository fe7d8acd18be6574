"""A bad config stops start-up with one line naming the file, the entry and the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from symbiosis.config import GatewayConfig
from symbiosis.exceptions import ConfigError
from symbiosis.gateway import create_app
from symbiosis.settings import Settings

GOOD = """
[providers.openai]
type = "openai"
api_key = "${OPENAI_API_KEY}"

[providers.local]
type = "openai_compatible"
base_url = "http://127.0.0.1:8001/v1"

[[models]]
name = "gpt-4o-mini"
provider = "openai"
model = "gpt-4o-mini-2024-07-18"
input_cost_per_mtok = 0.15
output_cost_per_mtok = 0.60

[[models]]
name = "gpt-4o-mini"
provider = "local"
"""


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> GatewayConfig:
    path = tmp_path / "symbiosis.toml"
    path.write_text(text)
    return GatewayConfig.load(path, environ={} if environ is None else environ)


def _start(tmp_path: Path, text: str, environ: dict[str, str] | None) -> None:
    create_app(Settings(), config=_load(tmp_path, text, environ))


def _error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        _start(tmp_path, text, environ)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "symbiosis.toml"))
    return message


def test_good_config_substitutes_env_and_groups_models(tmp_path: Path) -> None:
    config = _load(tmp_path, GOOD, {"OPENAI_API_KEY": "sk-real"})
    assert config.providers["openai"].options == {"api_key": "sk-real"}
    assert [(m.name, m.provider, m.model) for m in config.models] == [
        ("gpt-4o-mini", "openai", "gpt-4o-mini-2024-07-18"),
        ("gpt-4o-mini", "local", "gpt-4o-mini"),
    ]
    assert config.models[0].input_cost_per_mtok == 0.15
    app = create_app(Settings(), config=config)
    assert app.state.gateway.router.model_names == ["gpt-4o-mini"]
    assert len(app.state.gateway.router.candidates("gpt-4o-mini")) == 2


def test_missing_env_var_is_named(tmp_path: Path) -> None:
    message = _error(tmp_path, GOOD)
    assert "providers.openai.api_key" in message
    assert "OPENAI_API_KEY is not set" in message


def test_unknown_provider_type(tmp_path: Path) -> None:
    message = _error(tmp_path, '[providers.x]\ntype = "openaii"\n')
    assert "providers.x" in message
    assert "unknown provider type 'openaii'" in message
    assert "openai_compatible" in message  # lists the known ones


def test_duplicate_provider(tmp_path: Path) -> None:
    text = '[providers.a]\ntype = "openai"\n\n[providers.a]\ntype = "openai"\n'
    message = _error(tmp_path, text)
    assert "providers.a: duplicate provider" in message
    assert "line 1" in message
    assert "line 4" in message


def test_model_pointing_at_unknown_provider(tmp_path: Path) -> None:
    text = '[providers.a]\ntype = "openai"\n[[models]]\nname = "m"\nprovider = "b"\n'
    message = _error(tmp_path, text)
    assert "models[0] (m)" in message
    assert "provider 'b' is not defined" in message


def test_unknown_provider_option(tmp_path: Path) -> None:
    message = _error(tmp_path, '[providers.a]\ntype = "openai"\napi_kee = "x"\n')
    assert "providers.a" in message
    assert "unknown option(s) api_kee" in message


def test_missing_required_provider_option(tmp_path: Path) -> None:
    message = _error(tmp_path, '[providers.az]\ntype = "azure_openai"\napi_key = "k"\n')
    assert "providers.az" in message
    assert "base_url" in message


def test_invalid_toml(tmp_path: Path) -> None:
    message = _error(tmp_path, "[providers.a\n")
    assert "not valid TOML" in message


def test_bad_price(tmp_path: Path) -> None:
    text = '[providers.a]\ntype = "openai"\n[[models]]\nname = "m"\nprovider = "a"\n'
    message = _error(tmp_path, text + "input_cost_per_mtok = -1\n")
    assert "input_cost_per_mtok must be a number >= 0" in message


def test_serve_with_bad_config_prints_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[providers.x]\ntype = "nope"\n')
    result = subprocess.run(
        [sys.executable, "-m", "symbiosis", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown provider type 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_missing_config_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "symbiosis", "serve", "--config", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "config file not found" in result.stderr
