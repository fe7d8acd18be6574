"""Shared base for wire models: unknown fields pass through, nothing is dropped."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """A wire object that keeps fields a newer client or server sends."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
