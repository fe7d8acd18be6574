"""Self-hosted and third-party servers that speak the OpenAI wire format.

They differ only in connection facts, so they are data rows (``PRESETS``), not classes:
``preset = "ollama"`` fills in the usual local address; ``base_url`` always wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import httpx

from ._http import DEFAULT_TIMEOUT
from .openai import OpenAIProvider

PRESETS: Mapping[str, str] = {
    "vllm": "http://127.0.0.1:8000/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
    "tgi": "http://127.0.0.1:8080/v1",
    "huggingface": "https://router.huggingface.co/v1",
}


class OpenAICompatibleProvider(OpenAIProvider):
    """vLLM, Ollama, llama.cpp, TGI, the Hugging Face router: any base URL, optional key."""

    type: ClassVar[str] = "openai_compatible"
    default_base_url: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        base_url: str | None = None,
        preset: str | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
        name: str | None = None,
    ) -> None:
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r} (known: {', '.join(sorted(PRESETS))})")
        url = base_url or (PRESETS[preset] if preset else None)
        if not url:
            raise ValueError("provider type 'openai_compatible' needs a base_url or a preset")
        super().__init__(
            api_key=api_key,
            base_url=url,
            headers=headers,
            timeout=timeout,
            http_client=http_client,
            name=name,
        )


__all__ = ["PRESETS", "OpenAICompatibleProvider"]
