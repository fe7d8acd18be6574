"""Pure ASGI middleware: request ids, authentication, quotas, metering, error rendering."""

from .auth import SymbiosisMiddleware, authorize_model, current_key, key_of
from .errors import send_error
from .request_id import RequestIdMiddleware, request_id_of

__all__ = [
    "RequestIdMiddleware",
    "SymbiosisMiddleware",
    "authorize_model",
    "current_key",
    "key_of",
    "request_id_of",
    "send_error",
]
