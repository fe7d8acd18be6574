"""Pure ASGI middleware: request ids, authentication, quotas, metering, error rendering."""

from .errors import send_error
from .request_id import RequestIdMiddleware, request_id_of

__all__ = ["RequestIdMiddleware", "request_id_of", "send_error"]
