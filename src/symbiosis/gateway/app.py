"""``create_app``: the composition root of the reference gateway."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import GatewayConfig
from ..exceptions import InvalidRequestError, SymbiosisError
from ..middleware import RequestIdMiddleware, SymbiosisMiddleware, request_id_of
from ..services.keys import KeyService
from ..services.usage import UsageRecorder
from ..settings import Settings
from ._dispatch import ModelDispatch
from ._openapi import install_docs
from ._responses import error_response
from .routes.anthropic import MESSAGES_DOCS, anthropic_routes
from .routes.health import health_router
from .routes.openai import OPENAI_DOCS, openai_router, openai_routes
from .runtime import Gateway

log = logging.getLogger("symbiosis.gateway")


def create_app(
    settings: Settings | None = None,
    *,
    config: GatewayConfig | None = None,
    http_client: httpx.AsyncClient | None = None,
    usage: UsageRecorder | None = None,
    keys: KeyService | None = None,
) -> GatewayApp:
    """Build the whole gateway as an ASGI app.

    With no arguments it reads the ``SYMBIOSIS_*`` environment and the config file it
    names. ``http_client`` replaces every provider's own pooled client (tests, proxies).
    The app can be mounted under a prefix of another app: nothing here needs the
    lifespan to have run. ``keys`` verifies virtual keys (default: a key service over
    ``settings.database_url``); the same ``SymbiosisMiddleware`` a host app can mount
    guards every route but the health checks and the API docs.
    """
    settings = settings or Settings.from_env()
    if config is None:
        config = (
            GatewayConfig.load(settings.config_path) if settings.config_path else GatewayConfig()
        )
    gateway = Gateway.build(settings, config, http_client=http_client, usage=usage, keys=keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        yield
        await gateway.aclose()  # drains the request log, settles budgets

    app = GatewayApp(
        title="Symbiosis gateway",
        summary="An OpenAI-compatible gateway in front of every model you use.",
        version=_version(),
        lifespan=lifespan,
        **_NO_NATIVE_TELEMETRY,
    )
    app.state.gateway = gateway
    app.model_dispatch = ModelDispatch(
        gateway, [*openai_routes(gateway), *anthropic_routes(gateway)]
    )
    app.include_router(openai_router(gateway))
    app.include_router(health_router({"database": gateway.keys.check}))
    install_docs(app, [*OPENAI_DOCS, MESSAGES_DOCS])
    _install_error_handlers(app)
    app.add_middleware(SymbiosisMiddleware, keys=gateway.keys)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(_StartOnFirstRequest, gateway=gateway)
    return app


class GatewayApp(FastAPI):
    """FastAPI, with ``POST`` to the model routes served by ``ModelDispatch`` first.

    The model calls are the hot path; they skip Starlette's middleware stack and router
    (see ``_dispatch``). Everything else is plain FastAPI.
    """

    model_dispatch: ModelDispatch | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        dispatch = self.model_dispatch
        if dispatch is not None:
            if self.root_path:
                scope["root_path"] = self.root_path
            route = dispatch.match(scope)
            if route is not None:
                await dispatch.serve(route, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class _StartOnFirstRequest:
    """A mounted app never sees its lifespan: start the background work on first use."""

    def __init__(self, app: ASGIApp, *, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.gateway.started:
            await self.gateway.start()
        await self.app(scope, receive, send)


# FastAPI >= 0.16x asks the OpenTelemetry globals on every request whether to trace;
# Symbiosis does its own telemetry, so that per-request cost buys nothing here.
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as OpenAI-shaped JSON: never HTML, never a traceback."""

    async def symbiosis_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SymbiosisError)
        return error_response(exc)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error = SymbiosisError(
            str(exc.detail), code="unknown_url" if exc.status_code == 404 else None
        )
        if exc.status_code == 404:
            error.message = f"Unknown request URL: {request.method} {request.url.path}"
        error.status_code = exc.status_code  # type: ignore[misc]
        error.error_type = "invalid_request_error"  # type: ignore[misc]
        return error_response(error)

    async def validation_error(request: Request, exc: Exception) -> Response:
        return error_response(InvalidRequestError(str(exc)))

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        request_id = request_id_of(request.scope)
        log.exception("unhandled error in request %s", request_id)
        return error_response(SymbiosisError(f"Internal error (request id {request_id})"))

    app.add_exception_handler(SymbiosisError, symbiosis_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected_error)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("symbiosis")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"
