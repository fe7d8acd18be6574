"""SymbiosisMiddleware in a plain Starlette app, as a team embedding it would mount it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.types import Message, Receive, Scope, Send

from symbiosis import SymbiosisMiddleware
from symbiosis.exceptions import ModelNotFoundError, PermissionDeniedError
from symbiosis.middleware import authorize_model, current_key, key_of
from symbiosis.services.keys import KeyContext, KeyService

from .._db import static_keys

SECRET = "sk-sym-middleware-test-0123456789abcdefghijklmnopq"


async def whoami(request: Request) -> JSONResponse:
    key = key_of(request.scope)
    if key is None:
        return JSONResponse({"key": None})
    return JSONResponse(
        {"key": key.key_id, "project": key.project_name, "same": current_key() is key}
    )


async def stream(request: Request) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(3):
            key = current_key()
            yield (key.project_name if key else "nobody").encode() + b"\n"

    return StreamingResponse(body())


async def public(request: Request) -> PlainTextResponse:
    return PlainTextResponse("open")


ROUTES = [
    Route("/whoami", whoami),
    Route("/stream", stream),
    *(Route(path, public) for path in ("/health/live", "/docs", "/openapi.json", "/healthz")),
]


def _app(keys: KeyService, **options: object) -> Starlette:
    return Starlette(
        routes=ROUTES, middleware=[Middleware(SymbiosisMiddleware, keys=keys, **options)]
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    keys = static_keys([SECRET], project="team")
    transport = httpx.ASGITransport(app=_app(keys))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http
    await keys.aclose()


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {SECRET}"},
        {"authorization": f"bearer {SECRET}"},
        {"api-key": SECRET},
        {"x-api-key": SECRET},
    ],
    ids=["bearer", "bearer-lowercase", "api-key", "x-api-key"],
)
async def test_each_header_authenticates(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/whoami", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["project"] == "team"
    assert body["key"].startswith("key_")
    assert body["same"] is True


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "didn't provide an API key"),
        ({"Authorization": f"Basic {SECRET}"}, "didn't provide an API key"),
        ({"Authorization": "Bearer sk-sym-unknown"}, "Incorrect API key"),
        ({"x-api-key": "sk-other-vendor"}, "Incorrect API key"),
    ],
)
async def test_bad_keys_get_an_openai_shaped_401(
    client: httpx.AsyncClient, headers: dict[str, str], message: str
) -> None:
    response = await client.post("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["code"] == "invalid_api_key"
    assert error["param"] is None
    assert message in error["message"]


async def test_health_and_docs_are_public_by_default(client: httpx.AsyncClient) -> None:
    for path in ("/health/live", "/docs", "/openapi.json"):
        assert (await client.get(path)).text == "open"
    assert (await client.get("/healthz")).status_code == 401  # a prefix is not a parent


async def test_guarded_paths_are_configurable() -> None:
    keys = static_keys([SECRET])
    transport = httpx.ASGITransport(app=_app(keys, public_paths=["/whoami/"]))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.get("/health/live")).status_code == 401
        assert (await http.get("/whoami")).json() == {"key": None}
    await keys.aclose()


async def test_the_key_is_visible_while_a_stream_is_sent(client: httpx.AsyncClient) -> None:
    response = await client.get("/stream", headers={"x-api-key": SECRET})
    assert response.text == "team\nteam\nteam\n"


async def test_under_a_mount_public_paths_are_relative() -> None:
    keys = static_keys([SECRET], project="mounted")
    outer = Starlette(routes=[Mount("/llm", app=_app(keys))])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        assert (await http.get("/llm/health/live")).text == "open"
        assert (await http.get("/llm/whoami")).status_code == 401
        response = await http.get("/llm/whoami", headers={"api-key": SECRET})
        assert response.json()["project"] == "mounted"
    await keys.aclose()


async def test_other_scope_types_pass_untouched() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        raise AssertionError("nothing should be sent")

    keys = static_keys([])
    middleware = SymbiosisMiddleware(inner, keys=keys)
    for kind in ("lifespan", "websocket"):
        await middleware({"type": kind, "path": "/ws", "headers": []}, receive, send)
    assert seen == ["lifespan", "websocket"]
    assert not keys.started
    await keys.aclose()


async def test_without_arguments_it_reads_the_environment(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = KeyService.from_url(migrated_url)
    await admin.create_project("from-env", actor="test")
    secret = (await admin.create_key("from-env", actor="test")).secret
    await admin.aclose()

    monkeypatch.setenv("SYMBIOSIS_DATABASE_URL", migrated_url)

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        key = key_of(scope)
        await PlainTextResponse(key.project_name if key else "-")(scope, receive, send)

    middleware = SymbiosisMiddleware(inner)
    assert not middleware.keys.started  # a mounted app gets no lifespan: it starts on use
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        response = await http.get("/anything", headers={"Authorization": f"Bearer {secret}"})
    assert response.text == "from-env"
    assert middleware.keys.started
    await middleware.keys.aclose()


def _scope_with(key: KeyContext | None) -> Scope:
    return {"type": "http", "symbiosis.key": key} if key else {"type": "http"}


def test_authorize_model_404_then_403() -> None:
    limited = KeyContext("key_1", None, "proj_1", "p", allowed_models=frozenset({"small"}))
    everything = KeyContext("key_2", None, "proj_1", "p")
    served = {"small", "large"}

    with pytest.raises(ModelNotFoundError) as missing:
        authorize_model(_scope_with(limited), "huge", served)
    assert (missing.value.status_code, missing.value.code) == (404, "model_not_found")

    with pytest.raises(PermissionDeniedError) as denied:
        authorize_model(_scope_with(limited), "large", served)
    assert (denied.value.status_code, denied.value.code) == (403, "model_not_allowed")
    assert orjson.loads(denied.value.to_json())["error"]["param"] == "model"

    authorize_model(_scope_with(limited), "small", served)
    authorize_model(_scope_with(everything), "large", served)
    authorize_model(_scope_with(None), "large", served)
