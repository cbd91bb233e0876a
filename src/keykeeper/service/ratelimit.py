"""Per-principal and per-namespace rate limits (token buckets), answered with 429
``resource_exhausted`` and ``Retry-After``.

Each limit is requests per second with a burst of twice that (at least 1 request). A
principal's own ``rate_limit`` overrides the server default (``KEYKEEPER_RATE_LIMIT``; 0
or unset: no limit); a namespace's ``rate_limit`` caps every caller's use of its keys
together. The root break-glass token is not limited. Buckets live in each server process:
with N nodes (or workers) a client can reach N times the limit (documented in the
operator guide).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from keykeeper.authz.model import Principal
from keykeeper.custody.cache import TTLCache
from keykeeper.errors import ResourceExhausted
from keykeeper.service.deps import Deps

__all__ = ["MAX_RATE", "MAX_RETRY", "RateLimiter", "TokenBucket"]

MAX_RETRY = 3600        # seconds: Retry-After never says more, the slowest rate is 1/h
MAX_RATE = 1_000_000.0  # requests per second


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; :meth:`take` answers 0 when a request
    may proceed, else the seconds until one may."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, burst, burst, now

    def take(self, now: float) -> float:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, deps: Deps, default_rate: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic, settings_ttl: float = 1.0) -> None:
        self._d = deps
        self.default_rate = default_rate if default_rate and default_rate > 0 else None
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._ns_rates: TTLCache[str, float] = TTLCache(10_000, settings_ttl)

    def _take(self, kind: str, name: str, rate: float) -> None:
        # Bounded whatever the stored value: at least one request per MAX_RETRY seconds.
        rate = min(max(rate, 1.0 / MAX_RETRY), MAX_RATE)
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((kind, name))
            if bucket is None or bucket.rate != rate:
                if len(self._buckets) > 100_000:
                    self._buckets.clear()  # bounded memory; limits restart from full
                bucket = self._buckets[(kind, name)] = TokenBucket(rate, max(1.0, 2 * rate),
                                                                   now)
            wait = bucket.take(now)
        if wait > 0:
            raise ResourceExhausted(f"rate limit of {rate:g} requests per second for {kind} "
                                    f"'{name}' exceeded; retry later",
                                    retry_after=min(MAX_RETRY, max(1, math.ceil(wait))))

    def check_principal(self, who: Principal | None) -> None:
        """Raise ResourceExhausted when ``who`` is over its limit."""
        if who is None or who.is_root:
            return
        rate = who.rate_limit if who.rate_limit is not None else self.default_rate
        if rate:
            self._take("principal", who.name, rate)

    def namespace_rate(self, namespace: str) -> float:
        rate = self._ns_rates.get(namespace)
        if rate is None:
            with self._d.reading() as conn:
                row = self._d.system.get_namespace_limit(conn, namespace)
            rate = row or 0.0
            self._ns_rates.put(namespace, rate)
        return rate

    def check_namespace(self, who: Principal | None, namespace: str) -> None:
        if who is None or who.is_root:
            return
        rate = self.namespace_rate(namespace)
        if rate:
            self._take("namespace", namespace, rate)
