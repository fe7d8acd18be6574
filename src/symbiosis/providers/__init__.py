"""Provider clients: one typed, OpenAI-shaped interface to every upstream.

from symbiosis.providers import OpenAIProvider
async with OpenAIProvider(api_key="sk-...") as provider:
    completion = await provider.chat(ChatCompletionRequest(...))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .azure_openai import AzureOpenAIProvider
from .base import HTTPProvider, Provider
from .openai import OpenAIProvider
from .openai_compatible import OpenAICompatibleProvider
from .registry import create_provider, provider_class, provider_types

if TYPE_CHECKING:
    from .anthropic import AnthropicProvider

__all__ = [
    "AnthropicProvider",
    "AzureOpenAIProvider",
    "HTTPProvider",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "Provider",
    "create_provider",
    "provider_class",
    "provider_types",
]


def __getattr__(name: str) -> Any:
    if name == "AnthropicProvider":
        from .anthropic import AnthropicProvider

        return AnthropicProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
