"""OpenAI ``/v1/models`` listing."""

from __future__ import annotations

from typing import Literal

from ._base import WireModel


class ModelCard(WireModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "symbiosis"


class ModelList(WireModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
