"""Providers are found by type name: built-ins, and plug-ins through entry points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from symbiosis.providers import OpenAIProvider, create_provider, provider_class, provider_types
from symbiosis.providers.registry import UnknownProviderTypeError, _plugins

PLUGIN = """
from symbiosis.providers import OpenAICompatibleProvider

class AcmeProvider(OpenAICompatibleProvider):
    type = "acme"
"""


@pytest.fixture
def installed_plugin(tmp_path: Path):
    """A real distribution on sys.path declaring a ``symbiosis.providers`` entry point."""
    (tmp_path / "acme_llm.py").write_text(PLUGIN)
    dist = tmp_path / "acme_llm-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-llm\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[symbiosis.providers]\nacme = acme_llm:AcmeProvider\n")
    sys.path.insert(0, str(tmp_path))
    _plugins.cache_clear()
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("acme_llm", None)
    _plugins.cache_clear()


def test_builtins() -> None:
    assert provider_class("openai") is OpenAIProvider
    assert {"openai", "azure_openai", "openai_compatible", "anthropic"} <= set(provider_types())


def test_plugin_from_entry_point(installed_plugin: None) -> None:
    assert "acme" in provider_types()
    provider = create_provider("acme", {"base_url": "http://acme.test/v1"}, name="acme-eu")
    assert type(provider).__name__ == "AcmeProvider"
    assert provider.name == "acme-eu"


def test_unknown_type_lists_known_ones() -> None:
    with pytest.raises(UnknownProviderTypeError, match=r"known: .*openai_compatible"):
        provider_class("nope")
