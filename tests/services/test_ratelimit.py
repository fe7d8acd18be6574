"""RPM and TPM limits: who gets through, what the headers say, and how replicas share."""

from __future__ import annotations

import os
import socket

import pytest

from symbiosis.exceptions import RateLimitError
from symbiosis.services.ratelimit import Limit, RateLimiter, format_duration
from symbiosis.services.ratelimit_redis import RedisCounterSync


class Clock:
    def __init__(self, now: float = 6000.0) -> None:  # the start of a minute
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rpm_admits_up_to_the_limit_then_429_with_headers() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limits = [Limit("key:k", requests_per_minute=3)]
    remaining = [limiter.admit(limits, 0)["x-ratelimit-remaining-requests"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    with pytest.raises(RateLimitError) as caught:
        limiter.admit(limits, 0)
    headers = caught.value.headers()
    assert caught.value.status_code == 429
    assert caught.value.code == "rate_limit_exceeded"
    assert headers["x-ratelimit-limit-requests"] == "3"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-reset-requests"].endswith("s")


def test_window_slides() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limits = [Limit("key:k", requests_per_minute=2)]
    limiter.admit(limits, 0)
    limiter.admit(limits, 0)
    clock.now += 30  # half a minute later both still count
    with pytest.raises(RateLimitError):
        limiter.admit(limits, 0)
    clock.now += 45  # next minute, 15 s in: 2 * 0.75 = 1.5 still weigh
    with pytest.raises(RateLimitError):
        limiter.admit(limits, 0)
    clock.now += 30  # 45 s in: 2 * 0.25 = 0.5, so one more fits
    limiter.admit(limits, 0)


def test_retry_after_is_when_a_request_fits_again() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    limits = [Limit("key:k", requests_per_minute=1)]
    limiter.admit(limits, 0)
    with pytest.raises(RateLimitError) as caught:
        limiter.admit(limits, 0)
    wait = caught.value.retry_after
    assert wait is not None
    clock.now += wait
    limiter.admit(limits, 0)


def test_tpm_reserves_the_estimate_and_settles_the_actual() -> None:
    limiter = RateLimiter(clock=Clock())
    limits = [Limit("key:k", tokens_per_minute=1000)]
    headers = limiter.admit(limits, 600)
    assert headers["x-ratelimit-remaining-tokens"] == "400"
    with pytest.raises(RateLimitError) as caught:
        limiter.admit(limits, 600)  # 1200 > 1000
    assert caught.value.headers()["x-ratelimit-limit-tokens"] == "1000"
    limiter.settle(limits, estimated_tokens=600, actual_tokens=100)
    assert limiter.admit(limits, 600)["x-ratelimit-remaining-tokens"] == "300"


def test_key_and_project_limits_both_apply_tightest_reported() -> None:
    limiter = RateLimiter(clock=Clock())
    key_a = [Limit("key:a", requests_per_minute=10), Limit("project:p", requests_per_minute=3)]
    key_b = [Limit("key:b", requests_per_minute=10), Limit("project:p", requests_per_minute=3)]
    assert limiter.admit(key_a, 0)["x-ratelimit-remaining-requests"] == "2"
    limiter.admit(key_b, 0)
    limiter.admit(key_a, 0)
    with pytest.raises(RateLimitError, match="project:p"):
        limiter.admit(key_b, 0)


def test_unlimited_has_no_headers() -> None:
    assert RateLimiter().admit([Limit("key:k")], 100) == {}


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.25, "250ms"), (1, "1s"), (59.2, "1m0s"), (61, "1m1s"), (360, "6m0s")]
)
def test_duration_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def _redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_available(), reason="no Redis answers at 127.0.0.1:6379")
async def test_two_replicas_share_counts_through_redis() -> None:
    prefix = f"symbiosis-test:{os.urandom(6).hex()}"
    clock = Clock()
    replicas = [RateLimiter(clock=clock), RateLimiter(clock=clock)]
    syncs = [RedisCounterSync(r, "redis://127.0.0.1:6379/0", prefix=prefix) for r in replicas]
    limits = [Limit("key:shared", requests_per_minute=4)]
    try:
        replicas[0].admit(limits, 0)
        replicas[0].admit(limits, 0)
        replicas[1].admit(limits, 0)
        for sync in syncs:
            await sync.sync()
        await syncs[0].sync()  # replica 0 now also sees replica 1's request
        # 3 counted across the fleet: one more fits on either replica, then none.
        replicas[1].admit(limits, 0)
        await syncs[1].sync()
        await syncs[0].sync()
        for replica in replicas:
            with pytest.raises(RateLimitError):
                replica.admit(limits, 0)
    finally:
        for sync in syncs:
            await sync.stop()
