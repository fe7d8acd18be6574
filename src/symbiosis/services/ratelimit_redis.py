"""Share rate-limit counters between replicas through Redis, off the request path.

Every ``interval`` seconds each replica adds what it counted since the last sync to one
Redis counter per scope, kind and minute (``INCRBY``, which also returns the total), and
learns from the totals what the other replicas counted. Decisions stay local, so a
request never waits on Redis; the price is that replicas see each other's traffic up to
one interval late, and a burst within that interval can overshoot by what the other
replicas admitted meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ._background import BackgroundTask
from .ratelimit import WINDOW, Counter, RateLimiter

log = logging.getLogger("symbiosis.ratelimit")


class RedisCounterSync:
    """Background task keeping ``limiter.others`` in step with the other replicas."""

    def __init__(
        self,
        limiter: RateLimiter,
        url: str,
        *,
        interval: float = 0.2,
        prefix: str = "symbiosis:rl",
        client: Any = None,
    ) -> None:
        if client is None:
            try:
                from redis.asyncio import Redis
            except ImportError:
                raise ImportError(
                    "sharing rate limits through Redis needs the redis client: "
                    "pip install 'symbiosis[redis]'"
                ) from None
            client = Redis.from_url(url)
        self._redis = client
        self._limiter = limiter
        self._interval = interval
        self._prefix = prefix
        self._pushed: dict[Counter, int] = {}
        self._task = BackgroundTask("symbiosis-ratelimit-sync", self._run)

    async def start(self) -> None:
        self._task.start()

    async def stop(self) -> None:
        await self._task.cancel()
        with contextlib.suppress(Exception):
            await self.sync()
        await self._redis.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception as exc:  # Redis down: keep limiting locally, say so
                log.warning("rate-limit sync with Redis failed: %s", exc)
            await asyncio.sleep(self._interval)

    async def sync(self) -> None:
        """Push this replica's new counts and pull the others' in one round trip."""
        counters = self._limiter.active_counters()
        if not counters:
            return
        local = self._limiter.local
        deltas = [local.get(c, 0) - self._pushed.get(c, 0) for c in counters]
        pipe = self._redis.pipeline(transaction=False)
        for counter, delta in zip(counters, deltas, strict=True):
            key = self._key(counter)
            pipe.incrby(key, delta)
            pipe.expire(key, int(3 * WINDOW))
        results = await pipe.execute()
        for index, counter in enumerate(counters):
            total = int(results[2 * index])
            mine = local.get(counter, 0)
            self._pushed[counter] = mine
            self._limiter.others[counter] = max(0, total - mine)
        live = set(counters)
        for stale in [c for c in self._pushed if c not in live]:
            del self._pushed[stale]

    def _key(self, counter: Counter) -> str:
        scope, kind, minute = counter
        return f"{self._prefix}:{scope}:{kind}:{minute}"
