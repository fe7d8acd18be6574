"""Budget alerts delivered to a webhook: queued, retried with backoff, never in the way.

The payload is one JSON object::

    {"event": "budget_alert", "scope": "project", "scope_id": "proj_…",
     "threshold": 0.8, "percent": 80, "budget_usd": "100", "spent_usd": "80.5",
     "period": "monthly", "at": "2026-11-28T12:00:00+00:00"}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from ._background import BackgroundTask
from .budgets import BudgetScope

log = logging.getLogger("symbiosis.budgets")


class WebhookAlerts:
    """Call it with an alert (as ``BudgetService(on_alert=…)`` does); a task posts it."""

    def __init__(
        self,
        url: str,
        *,
        attempts: int = 5,
        backoff: float = 1.0,
        timeout: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
        max_queue: int = 1000,
    ) -> None:
        self.url = url
        self.attempts = attempts
        self.backoff = backoff
        self._client = http_client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = http_client is None
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_queue)
        self._task = BackgroundTask("symbiosis-alert-webhook", self._run)

    def __call__(self, scope: BudgetScope, threshold: float, spent: Decimal) -> None:
        payload = {
            "event": "budget_alert",
            "scope": scope.scope,
            "scope_id": scope.scope_id,
            "threshold": threshold,
            "percent": round(threshold * 100),
            "budget_usd": format(scope.amount_usd.normalize(), "f"),
            "spent_usd": format(spent.normalize(), "f"),
            "period": scope.period,
            "at": datetime.now(UTC).isoformat(),
        }
        try:
            self._queue.put_nowait(payload)
        except asyncio.QueueFull:
            log.error("budget alert webhook queue is full; dropped %s", payload)

    async def start(self) -> None:
        self._task.start()

    async def stop(self, grace: float = 5.0) -> None:
        """Give queued alerts ``grace`` seconds to go out, then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace)
        await self._task.cancel()
        if self._owns_client:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            payload = await self._queue.get()
            try:
                await self._deliver(payload)
            finally:
                self._queue.task_done()

    async def _deliver(self, payload: dict[str, Any]) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                response = await self._client.post(self.url, json=payload)
                if response.status_code < 300:
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = repr(exc)
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        log.error("budget alert webhook %s failed %d times (%s)", self.url, self.attempts, problem)
