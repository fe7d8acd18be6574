"""The lifecycle every background worker of a service shares: start once, stop on stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

# How long a stop waits for work under way (a database that stopped answering) before
# it cancels it.
STOP_GRACE_SECONDS = 10.0


class BackgroundTask:
    """One named task running ``work()``; ``start`` is idempotent, ``cancel`` awaits it."""

    def __init__(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.name = name
        self._work = work
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name=self.name)

    async def cancel(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def finish(self, grace: float) -> None:
        """Let ``work()`` return on its own (it has been asked to) for up to ``grace``
        seconds, then cancel it: a worker stopped mid-write may leave its write half done."""
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
