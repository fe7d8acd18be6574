"""Symbiosis: an LLM gateway server, ASGI middleware and provider clients in one package."""

from __future__ import annotations

from .exceptions import (
    AuthenticationError,
    ConfigError,
    InsufficientQuotaError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    SymbiosisError,
    UpstreamError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from .middleware import SymbiosisMiddleware
from .settings import Settings

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "InsufficientQuotaError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "Settings",
    "SymbiosisError",
    "SymbiosisMiddleware",
    "UpstreamError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
]
