"""The errors Symbiosis raises, each one knowing how it reaches an OpenAI client.

Every error a client can see renders as the OpenAI error object
``{"error": {"message", "type", "param", "code"}}`` with the HTTP status below::

    SymbiosisError                       (500, api_error)
    ├── InvalidRequestError              (400, invalid_request_error)
    │   ├── ModelNotFoundError           (404, model_not_found)
    │   └── RequestTooLargeError         (413, request_too_large)
    ├── AuthenticationError              (401, authentication_error / invalid_api_key)
    ├── PermissionDeniedError            (403, permission_error / model_not_allowed)
    ├── RateLimitError                   (429, rate_limit_error / rate_limit_exceeded)
    ├── InsufficientQuotaError           (429, insufficient_quota)
    └── UpstreamError                    (502, upstream_error / bad_upstream_response)
        ├── UpstreamUnavailableError     (503, upstream_unavailable)
        └── UpstreamTimeoutError         (504, upstream_timeout)

    ConfigError                          a bad configuration; stops start-up, never sent to clients

Routes and providers raise these; one renderer turns them into responses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

__all__ = [
    "AuthenticationError",
    "ConfigError",
    "InsufficientQuotaError",
    "InvalidRequestError",
    "ModelNotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "SymbiosisError",
    "UpstreamError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
]


class SymbiosisError(Exception):
    """Base of every error that can be shown to an API client."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str | None] = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code
        self.retry_after = retry_after
        self.extra_headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    def headers(self) -> dict[str, str]:
        """Extra response headers (``Retry-After`` when the wait is known)."""
        if self.retry_after is None:
            return self.extra_headers
        return {**self.extra_headers, "retry-after": str(max(0, math.ceil(self.retry_after)))}


class InvalidRequestError(SymbiosisError):
    """The request itself is wrong: fixing it is the client's job."""

    status_code = 400
    error_type = "invalid_request_error"


class ModelNotFoundError(InvalidRequestError):
    status_code = 404
    default_code = "model_not_found"


class RequestTooLargeError(InvalidRequestError):
    status_code = 413
    default_code = "request_too_large"


class AuthenticationError(SymbiosisError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(SymbiosisError):
    status_code = 403
    error_type = "permission_error"
    default_code = "model_not_allowed"


class RateLimitError(SymbiosisError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class InsufficientQuotaError(SymbiosisError):
    status_code = 429
    error_type = "insufficient_quota"
    default_code = "insufficient_quota"


class UpstreamError(SymbiosisError):
    """The provider behind the gateway failed; the client's request was fine."""

    status_code = 502
    error_type = "upstream_error"
    default_code = "bad_upstream_response"


class UpstreamUnavailableError(UpstreamError):
    status_code = 503
    default_code = "upstream_unavailable"


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    default_code = "upstream_timeout"


class ConfigError(Exception):
    """A configuration that cannot work; the message names the file, the entry and the problem."""
