"""Requests-per-minute and tokens-per-minute limits, decided in process.

Counters are sliding windows over whole minutes: the previous minute's count weighs in
as much of it as still overlaps the last 60 s. Tokens are not known before a request is
answered, so admission reserves an estimate and ``settle`` corrects it afterwards.

Several replicas share their counts through ``RedisCounterSync`` (see
``ratelimit_redis.py``): each keeps deciding alone, from its own counts plus the others'
as of the last sync (every 200 ms by default), so no request waits on the network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..exceptions import RateLimitError

WINDOW = 60.0
REQUESTS = "requests"
TOKENS = "tokens"


@dataclass(frozen=True, slots=True)
class Limit:
    """The limits of one scope, e.g. ``key:key_1`` or ``project:prj_1``; None = unlimited."""

    scope: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@dataclass(frozen=True, slots=True)
class Quota:
    """Where the tightest limit stands after a decision; rendered as OpenAI's headers."""

    kind: str
    limit: int
    remaining: int
    reset_seconds: float

    def headers(self) -> dict[str, str]:
        return {
            f"x-ratelimit-limit-{self.kind}": str(self.limit),
            f"x-ratelimit-remaining-{self.kind}": str(max(0, self.remaining)),
            f"x-ratelimit-reset-{self.kind}": format_duration(self.reset_seconds),
        }


def format_duration(seconds: float) -> str:
    """OpenAI's style: ``1s``, ``6m0s``, ``250ms``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


Counter = tuple[str, str, int]  # scope, kind, minute


class RateLimiter:
    """Sliding-window RPM and TPM counters; cheap enough for every request."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.local: dict[Counter, int] = {}
        self.others: dict[Counter, int] = {}

    def admit(self, limits: Sequence[Limit], estimated_tokens: int) -> dict[str, str]:
        """Count one request and its estimated tokens, or raise 429 with the headers.

        Returns the ``x-ratelimit-*`` headers for the response (empty when unlimited).
        """
        now = self._clock()
        minute = int(now // WINDOW)
        tightest: dict[str, Quota] = {}
        for limit in limits:
            for kind, cap, cost in (
                (REQUESTS, limit.requests_per_minute, 1),
                (TOKENS, limit.tokens_per_minute, estimated_tokens),
            ):
                if cap is None:
                    continue
                used = self._used(limit.scope, kind, minute, now)
                if used + cost > cap:
                    wait = self._wait(limit.scope, kind, minute, now, cap, cost)
                    quota = Quota(kind, cap, cap - math.ceil(used), wait)
                    raise RateLimitError(
                        f"Rate limit reached for {limit.scope}: {cap} {kind} per minute. "
                        f"Try again in {format_duration(wait)}.",
                        retry_after=max(1.0, wait),
                        headers=quota.headers(),
                    )
                remaining = cap - math.ceil(used + cost)
                if kind not in tightest or remaining < tightest[kind].remaining:
                    tightest[kind] = Quota(kind, cap, remaining, WINDOW - now % WINDOW)
        for limit in limits:
            if limit.requests_per_minute is not None:
                self._add(limit.scope, REQUESTS, minute, 1)
            if limit.tokens_per_minute is not None and estimated_tokens:
                self._add(limit.scope, TOKENS, minute, estimated_tokens)
        headers: dict[str, str] = {}
        for quota in tightest.values():
            headers.update(quota.headers())
        return headers

    def settle(self, limits: Sequence[Limit], estimated_tokens: int, actual_tokens: int) -> None:
        """Replace a request's token estimate by what it really used."""
        delta = actual_tokens - estimated_tokens
        if not delta:
            return
        minute = int(self._clock() // WINDOW)
        for limit in limits:
            if limit.tokens_per_minute is not None:
                self._add(limit.scope, TOKENS, minute, delta)

    def _add(self, scope: str, kind: str, minute: int, amount: int) -> None:
        key = (scope, kind, minute)
        self.local[key] = self.local.get(key, 0) + amount
        if len(self.local) > 4096:
            self._forget_before(minute - 1)

    def _count(self, scope: str, kind: str, minute: int) -> int:
        key = (scope, kind, minute)
        return self.local.get(key, 0) + self.others.get(key, 0)

    def _used(self, scope: str, kind: str, minute: int, now: float) -> float:
        overlap = 1.0 - (now % WINDOW) / WINDOW
        previous = self._count(scope, kind, minute - 1)
        return previous * overlap + self._count(scope, kind, minute)

    def _wait(self, scope: str, kind: str, minute: int, now: float, cap: int, cost: int) -> float:
        """Seconds until ``cost`` more would fit, if nothing else arrives meanwhile."""
        for step in range(1, 121):
            later = now + step
            later_minute = int(later // WINDOW)
            current = self._count(scope, kind, minute) if later_minute == minute else 0
            previous = self._count(scope, kind, later_minute - 1)
            used = previous * (1.0 - (later % WINDOW) / WINDOW) + current
            if used + cost <= cap:
                return float(step)
        return 2 * WINDOW

    def _forget_before(self, minute: int) -> None:
        for table in (self.local, self.others):
            for key in [k for k in table if k[2] < minute]:
                del table[key]

    def active_counters(self) -> list[Counter]:
        """Counters of this minute and the last: what a shared backend needs to sync."""
        minute = int(self._clock() // WINDOW)
        self._forget_before(minute - 1)
        return list({*self.local, *self.others})
