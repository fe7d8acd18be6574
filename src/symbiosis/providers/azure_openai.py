"""Azure OpenAI: deployment URLs, ``api-version`` and the ``api-key`` header.

``base_url`` is the resource endpoint (``https://NAME.openai.azure.com``), as
``azure_endpoint`` in the OpenAI SDK; the model name of a ``[[models]]`` entry is the
deployment. An endpoint ending in ``/openai/v1`` uses Azure's v1 API instead, where the
deployment travels in the body and no ``api-version`` is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from ..wire import ChatCompletionRequest, EmbeddingsRequest
from ._http import DEFAULT_TIMEOUT
from .openai import OpenAIProvider

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI Service, keyed by ``api_key`` or an Entra ID ``azure_ad_token``."""

    type: ClassVar[str] = "azure_openai"
    default_base_url: ClassVar[str | None] = None

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None = None,
        azure_ad_token: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
        name: str | None = None,
    ) -> None:
        if not (api_key or azure_ad_token):
            raise ValueError("provider type 'azure_openai' needs api_key or azure_ad_token")
        super().__init__(
            base_url=base_url, headers=headers, timeout=timeout, http_client=http_client, name=name
        )
        if api_key:
            self._headers["api-key"] = api_key
        else:
            self._headers["authorization"] = f"Bearer {azure_ad_token}"
        self.api_version = api_version
        self._v1 = self.base_url.endswith("/openai/v1")

    def _url(self, path: str, model: str) -> str:
        if self._v1:
            return f"{self.base_url}/{path}"
        return f"{self.base_url}/openai/deployments/{model}/{path}?api-version={self.api_version}"

    def _body(self, request: ChatCompletionRequest | EmbeddingsRequest) -> dict[str, Any]:
        body = request.wire_body()
        if not self._v1:
            body.pop("model", None)
        return body


__all__ = ["DEFAULT_API_VERSION", "AzureOpenAIProvider"]
