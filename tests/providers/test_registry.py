"""Providers are found by type name: built-ins, and plug-ins through entry points."""

from __future__ import annotations

import pytest

from symbiosis.providers import OpenAIProvider, create_provider, provider_class, provider_types
from symbiosis.providers.registry import UnknownProviderTypeError

from ..conftest import InstallPlugin

PLUGIN = """
from symbiosis.providers import OpenAICompatibleProvider

class Plugin(OpenAICompatibleProvider):
    type = "acme"
"""


def test_builtins() -> None:
    assert provider_class("openai") is OpenAIProvider
    assert {"openai", "azure_openai", "openai_compatible", "anthropic"} <= set(provider_types())


def test_plugin_from_entry_point(install_plugin: InstallPlugin) -> None:
    install_plugin("acme", PLUGIN)
    assert "acme" in provider_types()
    provider = create_provider("acme", {"base_url": "http://acme.test/v1"}, name="acme-eu")
    assert type(provider).__name__ == "Plugin"
    assert provider.name == "acme-eu"


def test_unknown_type_lists_known_ones() -> None:
    with pytest.raises(UnknownProviderTypeError, match=r"known: .*openai_compatible"):
        provider_class("nope")
