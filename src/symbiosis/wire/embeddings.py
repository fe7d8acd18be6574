"""OpenAI embeddings request and response."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ._base import WireModel


class EmbeddingsRequest(WireModel):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    def wire_body(self, **overrides: Any) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude_unset=True, by_alias=True)
        body.update(overrides)
        return body


class Embedding(WireModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingsUsage(WireModel):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingsResponse(WireModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingsUsage | None = None
