"""Hand memory the C allocator keeps but nothing uses back to the operating system.

glibc's ``malloc`` keeps what a program frees in its arenas (one per thread that
allocates) for later use, so a one-off burst stays resident after it is over. The
burst that matters here is loading genai-prices' list prices: without a bytecode cache
(``PYTHONDONTWRITEBYTECODE=1``, no ``.pyc`` shipped) Python compiles its 1.6 MB data
module from source, about 70 MB at the peak, and the gateway then idled about 16 MB
higher than with the cache. ``malloc_trim`` returns those pages; with a warm cache it
finds almost nothing to return and costs about a millisecond.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; ``None`` where there is none (musl, macOS, Windows)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):
        return None


def release_free_memory() -> bool:
    """Return freed heap pages to the system; False where the C library cannot.

    ctypes releases the GIL for the call, so the event loop keeps running meanwhile.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
