"""The public surface is a contract: what is exported, sorted, and importable."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["symbiosis", "symbiosis.providers", "symbiosis.wire", "symbiosis.exceptions",
           "symbiosis.gateway"]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__)
    for attr in module.__all__:
        assert getattr(module, attr) is not None


def test_design_imports() -> None:
    from symbiosis.gateway import create_app
    from symbiosis.providers import (
        AnthropicProvider,
        AzureOpenAIProvider,
        OpenAICompatibleProvider,
        OpenAIProvider,
    )

    assert callable(create_app)
    types = {p.type for p in (AnthropicProvider, AzureOpenAIProvider, OpenAICompatibleProvider,
                              OpenAIProvider)}  # fmt: skip
    assert types == {"anthropic", "azure_openai", "openai_compatible", "openai"}
