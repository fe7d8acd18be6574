"""A lean HTTP/1.1 keep-alive client for providers' upstream calls (asyncio + httptools)."""

from ._pool import H1Pool

__all__ = ["H1Pool"]
