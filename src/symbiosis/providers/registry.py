"""Find a provider class by its ``type`` name: built-ins first, then plug-ins.

A third party adds a provider without touching the core by declaring an entry point::

    [project.entry-points."symbiosis.providers"]
    my_vendor = "my_package.provider:MyVendorProvider"
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from functools import cache
from importlib.metadata import entry_points
from typing import Any

import httpx

from .base import Provider

ENTRY_POINT_GROUP = "symbiosis.providers"

_BUILTINS: Mapping[str, str] = {
    "openai": "symbiosis.providers.openai:OpenAIProvider",
    "azure_openai": "symbiosis.providers.azure_openai:AzureOpenAIProvider",
    "openai_compatible": "symbiosis.providers.openai_compatible:OpenAICompatibleProvider",
    "anthropic": "symbiosis.providers.anthropic:AnthropicProvider",
}


class UnknownProviderTypeError(LookupError):
    """No built-in or plug-in provider has this ``type`` name."""


@cache
def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def provider_types() -> list[str]:
    """Every known ``type`` name, built-in or installed as a plug-in."""
    return sorted({*_BUILTINS, *_plugins()})


def provider_class(type_name: str) -> type[Provider]:
    """The class registered for ``type_name``."""
    if type_name in _BUILTINS:
        module_name, _, attr = _BUILTINS[type_name].partition(":")
        return getattr(importlib.import_module(module_name), attr)
    plugin = _plugins().get(type_name)
    if plugin is None:
        raise UnknownProviderTypeError(
            f"unknown provider type {type_name!r} (known: {', '.join(provider_types())})"
        )
    cls = plugin.load()
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise UnknownProviderTypeError(
            f"plug-in {type_name!r} ({plugin.value}) is not a symbiosis Provider class"
        )
    return cls


def create_provider(
    type_name: str,
    options: Mapping[str, Any],
    *,
    name: str | None = None,
    http_client: httpx.AsyncClient | None = None,
) -> Provider:
    """Build a provider from config options, refusing options its class does not take.

    Raises ``UnknownProviderTypeError`` or ``ValueError`` with a one-line reason.
    """
    cls = provider_class(type_name)
    parameters = inspect.signature(cls).parameters
    accepted = {p for p in parameters if p not in ("self", "http_client", "name")}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for provider type {type_name!r} "
            f"(accepted: {', '.join(sorted(accepted))})"
        )
    missing = sorted(
        p.name
        for p in parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind is inspect.Parameter.KEYWORD_ONLY
        and p.name not in options
    )
    if missing:
        raise ValueError(f"provider type {type_name!r} needs {', '.join(missing)}")
    return cls(**options, name=name, http_client=http_client)
