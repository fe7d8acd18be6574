"""``SymbiosisMiddleware``: every guarded request carries a valid virtual key, or gets a 401.

Mount it in any ASGI app (Starlette, FastAPI, the reference gateway)::

    app.add_middleware(SymbiosisMiddleware)              # reads SYMBIOSIS_* itself
    app.add_middleware(SymbiosisMiddleware, keys=my_key_service)

Inside a guarded request the verified key is in ``scope["symbiosis.key"]`` and, for
code that has no scope at hand, in ``current_key()``.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from ..exceptions import ModelNotFoundError, PermissionDeniedError, SymbiosisError
from ..services.keys import KeyContext, KeyService, bound_key, current_key
from ..settings import Settings
from .errors import send_error

__all__ = [
    "DEFAULT_PUBLIC_PATHS",
    "SCOPE_KEY",
    "SymbiosisMiddleware",
    "authorize_model",
    "current_key",
    "key_of",
]

SCOPE_KEY = "symbiosis.key"
DEFAULT_PUBLIC_PATHS = ("/health", "/docs", "/openapi.json", "/redoc")
_HEADERS = (b"authorization", b"api-key", b"x-api-key")


class SymbiosisMiddleware:
    """Pure ASGI authentication of virtual keys.

    ``keys`` is the key service to verify with; without it one is built from
    ``settings`` (default: the ``SYMBIOSIS_*`` environment) over the configured
    database. The service starts on the first request, since a mounted app never
    sees a lifespan. Requests to ``public_paths`` (each path and everything under
    it) pass without a key; other scope types (lifespan, websocket) pass untouched.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyService | None = None,
        settings: Settings | None = None,
        public_paths: Iterable[str] = DEFAULT_PUBLIC_PATHS,
    ) -> None:
        self.app = app
        if keys is None:
            settings = settings or Settings.from_env()
            keys = KeyService.from_url(settings.database_url)
        self.keys = keys
        self.public_paths = tuple(path.rstrip("/") for path in public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_public(route_path(scope)):
            await self.app(scope, receive, send)
            return
        try:
            context = await verified_key(self.keys, scope)
        except SymbiosisError as exc:
            await send_error(send, exc)
            return
        scope[SCOPE_KEY] = context
        with bound_key(context):
            await self.app(scope, receive, send)

    def _is_public(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.public_paths)


async def verified_key(keys: KeyService, scope: Scope) -> KeyContext:
    """The context of the key the request presents; ``keys`` starts on first use."""
    if not keys.started:
        await keys.start()
    return await keys.verify(presented_key(scope))


def key_of(scope: Scope) -> KeyContext | None:
    """The key that ``SymbiosisMiddleware`` verified for this request, if any."""
    return scope.get(SCOPE_KEY)


def authorize_model(scope: Scope, model: str, known: Container[str]) -> None:
    """Refuse a model that is not served (404) or that the request's key may not use (403).

    ``known`` holds the models the gateway (or the host app) serves. Requests that
    passed no key check (public paths) are only checked against ``known``.
    """
    if model not in known:
        raise ModelNotFoundError(
            f"The model '{model}' does not exist or is not served by this gateway",
            param="model",
        )
    key = key_of(scope)
    if key is not None and not key.allows(model):
        raise PermissionDeniedError(
            f"This API key is not allowed to use the model '{model}'", param="model"
        )


def presented_key(scope: Scope) -> str | None:
    """The key from ``Authorization: Bearer``, ``api-key`` or ``x-api-key``, in that order."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _HEADERS:
            found.setdefault(name, value)
    authorization = found.get(b"authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return token.strip().decode("latin-1")
    for name in _HEADERS[1:]:
        value = found.get(name, b"").strip()
        if value:
            return value.decode("latin-1")
    return None


def route_path(scope: Scope) -> str:
    """The path inside this app: under a mount, without the mount's prefix."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path
