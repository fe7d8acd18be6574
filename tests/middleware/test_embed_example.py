"""examples/embed_middleware.py works as its docstring says."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from symbiosis.services.keys import KeyService

EXAMPLE = Path(__file__).parents[2] / "examples" / "embed_middleware.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embed_middleware", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_embedding_example(migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = KeyService.from_url(migrated_url)
    await admin.create_project("my-team", actor="test")
    created = await admin.create_key("my-team", models=["gpt-4o-mini"], actor="test")
    await admin.aclose()
    monkeypatch.setenv("SYMBIOSIS_DATABASE_URL", migrated_url)

    app = _load().app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        assert (await http.get("/health/live")).json() == {"status": "ok"}
        assert (await http.get("/openapi.json")).status_code == 200
        refused = await http.get("/whoami")
        headers = {"x-api-key": created.secret}
        whoami = await http.get("/whoami", headers=headers)
        report = await http.get("/report", headers=headers)

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert whoami.json() == {
        "project": "my-team",
        "key": created.key.id,
        "models": ["gpt-4o-mini"],
    }
    assert report.json() == {"line": "generated for project my-team"}
    middleware = app.middleware_stack
    while not hasattr(middleware, "keys"):
        middleware = middleware.app
    await middleware.keys.aclose()
