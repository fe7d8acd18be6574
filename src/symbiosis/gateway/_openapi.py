"""Describe the model routes in the OpenAPI document.

The model routes are served by ``ModelDispatch``, outside FastAPI's router, and read
their bodies themselves (for size limits and OpenAI-shaped errors), so FastAPI cannot
see them. ``install_docs`` adds each ``DocumentedRoute`` to the generated document, with
its request and response models, when the document is first asked for: building the
JSON schemas at start-up would only delay readiness.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

_REF = "#/components/schemas/{model}"


@dataclass(frozen=True, slots=True)
class DocumentedRoute:
    path: str
    summary: str
    body: type[BaseModel]
    response: type[BaseModel]
    tag: str


def install_docs(app: FastAPI, routes: Iterable[DocumentedRoute]) -> None:
    """Wrap ``app.openapi`` so the generated document carries ``routes``."""
    generate = app.openapi
    documented = tuple(routes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            paths = document.setdefault("paths", {})
            for route in documented:
                paths.setdefault(route.path, {})["post"] = _operation(route, schemas)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def _operation(route: DocumentedRoute, schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "tags": [route.tag],
        "summary": route.summary,
        "operationId": route.path.strip("/").replace("/", "_") + "_post",
        "requestBody": {"required": True, "content": _json(_ref(route.body, schemas))},
        "responses": {
            "200": {"description": "Success", "content": _json(_ref(route.response, schemas))},
            "default": {"description": "An error, in the API's own error shape"},
        },
    }


def _ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=_REF, by_alias=True)
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault(model.__name__, schema)
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}
