"""Rate limits: token buckets per principal (and per namespace), 429 with Retry-After."""

from __future__ import annotations

from typing import Any

import pytest

from keykeeper.authz.model import Principal
from keykeeper.errors import ResourceExhausted
from keykeeper.service.ratelimit import RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limiter(rate: float | None, clock: Clock) -> RateLimiter:
    deps: Any = None  # principal limits never read the store
    return RateLimiter(deps, rate, clock=clock)


def test_bucket_allows_burst_then_waits() -> None:
    b = TokenBucket(rate=2.0, burst=4.0, now=0.0)
    assert [b.take(0.0) for _ in range(4)] == [0.0] * 4
    assert b.take(0.0) == pytest.approx(0.5)
    assert b.take(0.5) == 0.0


def test_principal_limit_and_retry_after() -> None:
    clock = Clock()
    lim = limiter(1.0, clock)
    app = Principal("app")
    lim.check_principal(app)
    lim.check_principal(app)  # burst of 2
    with pytest.raises(ResourceExhausted) as info:
        lim.check_principal(app)
    assert info.value.retry_after == 1 and "app" in info.value.detail
    clock.now += 1.0
    lim.check_principal(app)
    # Other principals have their own buckets; root is never limited.
    lim.check_principal(Principal("other"))
    for _ in range(10):
        lim.check_principal(Principal("root"))


def test_principal_override_and_no_default() -> None:
    clock = Clock()
    lim = limiter(None, clock)
    for _ in range(100):
        lim.check_principal(Principal("free"))
    slow = Principal("slow", rate_limit=0.5)
    lim.check_principal(slow)
    with pytest.raises(ResourceExhausted) as info:
        lim.check_principal(slow)
    assert info.value.retry_after == 2


def test_absurd_rates_are_bounded() -> None:
    clock = Clock()
    lim = limiter(None, clock)
    tiny = Principal("tiny", rate_limit=5e-324)
    lim.check_principal(tiny)
    with pytest.raises(ResourceExhausted) as info:
        lim.check_principal(tiny)
    assert info.value.retry_after == 3600
    huge = Principal("huge", rate_limit=1e308)
    for _ in range(1000):
        lim.check_principal(huge)
