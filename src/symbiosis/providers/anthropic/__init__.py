"""The Anthropic Messages API behind the OpenAI chat interface (see docs/anthropic.md)."""

from .provider import AnthropicProvider

__all__ = ["AnthropicProvider"]
