"""Guard your own FastAPI service with Symbiosis virtual keys.

    export SYMBIOSIS_DATABASE_URL=sqlite+aiosqlite:///./symbiosis.db
    symbiosis projects create my-team
    symbiosis keys create --project my-team          # prints sk-sym-… once
    uvicorn examples.embed_middleware:app
    curl -H "Authorization: Bearer sk-sym-…" http://127.0.0.1:8000/whoami

Requests without a valid key get the OpenAI-shaped 401 (also through ``api-key`` or
``x-api-key``); ``/health/…`` and the API docs stay open.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from symbiosis import SymbiosisMiddleware
from symbiosis.middleware import current_key, key_of

app = FastAPI(title="My service")
# No arguments: the key service comes from SYMBIOSIS_DATABASE_URL and starts on first use.
app.add_middleware(SymbiosisMiddleware)


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/whoami")
async def whoami(request: Request) -> dict[str, Any]:
    key = key_of(request.scope)  # set by the middleware: never None on a guarded route
    assert key is not None
    return {"project": key.project_name, "key": key.key_id, "models": sorted(key.allowed_models)}


@app.get("/report")
async def report() -> dict[str, str]:
    return {"line": _report_line()}


def _report_line() -> str:
    """Code far from the request still knows who is calling."""
    key = current_key()
    return f"generated for project {key.project_name}" if key else "anonymous"
