"""The reference gateway: ``create_app`` composes providers, services and middleware."""

from .app import create_app
from .runtime import Gateway

__all__ = ["Gateway", "create_app"]
