"""Mount the whole gateway under a prefix of your own FastAPI app.

    SYMBIOSIS_CONFIG=examples/symbiosis.toml uvicorn examples.mount_gateway:app

Clients then use base_url="http://127.0.0.1:8000/llm/v1". A mounted app's lifespan does
not run in Starlette; the gateway needs none to serve.
"""

from __future__ import annotations

from fastapi import FastAPI

from symbiosis.gateway import create_app

app = FastAPI(title="My service")


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


app.mount("/llm", create_app())
