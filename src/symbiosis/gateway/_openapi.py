"""Describe hand-parsed request bodies in the OpenAPI document.

Routes read the raw body themselves (for size limits and OpenAI-shaped errors), so
FastAPI cannot see the body model; ``body_schema`` documents it, and
``install_schemas`` adds the nested definitions to the document's components.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

_REF = "#/components/schemas/{model}"
_DOCUMENTED: dict[str, dict[str, Any]] = {}


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF, by_alias=True)
    _DOCUMENTED.update(schema.pop("$defs", {}))
    _DOCUMENTED[model.__name__] = schema
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}
            },
        }
    }


def install_schemas(app: FastAPI) -> None:
    """Wrap ``app.openapi`` so the generated document carries the body models."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in _DOCUMENTED.items():
                components.setdefault(name, schema)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
