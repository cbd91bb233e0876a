"""Prometheus metrics on an explicit registry (no import-time globals).

Series (docs/monitoring.md describes each):

* ``keykeeper_requests_total{route, outcome}`` and ``keykeeper_request_seconds{route}``:
  every REST request by operation name (``route``) and outcome (``success`` or the error
  code), and its latency histogram per operation (seconds).
* ``keykeeper_operations_total{key, operation, outcome}``: audited operations by key id
  (``""`` for none; ``other`` past ``max_keys`` distinct keys, to bound cardinality).
* ``keykeeper_keys{state, algorithm, namespace}``: managed keys (one GROUP BY per scrape).
* ``keykeeper_scheduler_runs_total{job, outcome}``, ``keykeeper_scheduler_items_total{job,
  outcome}`` (done | failed), ``keykeeper_scheduler_run_seconds{job}``,
  ``keykeeper_scheduler_leader`` (1 on the node that runs the jobs).
* ``keykeeper_cache_requests_total{cache, result}``: metadata and key-handle cache hits
  and misses.
* ``keykeeper_alerts_total{rule, severity}``: alerts raised (after deduplication);
  ``keykeeper_alert_webhook_failures_total``; ``keykeeper_monitor_dropped_total{what}``.
* ``keykeeper_sealed``; ``keykeeper_audit_alerts_total{kind}``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["CacheStats", "KeyCounts", "Metrics"]

# (state, algorithm, namespace) -> number of keys. A plain state -> count mapping is
# accepted too (algorithm and namespace then read "").
KeyCounts = Callable[[], Mapping[Any, int]]
CacheStats = Callable[[], tuple[int, int]]   # (hits, misses) since start
OTHER = "other"


class _StateCollector(Collector):
    def __init__(self, key_counts: KeyCounts, sealed: Callable[[], bool]) -> None:
        self._key_counts = key_counts
        self._sealed = sealed

    def collect(self) -> Iterable[Metric]:
        keys = GaugeMetricFamily("keykeeper_keys", "Managed keys by state, algorithm and "
                                 "namespace", labels=["state", "algorithm", "namespace"])
        try:
            for labels, n in sorted(self._key_counts().items()):
                if isinstance(labels, str):
                    labels = (labels, "", "")
                keys.add_metric([str(v) for v in labels], n)
        except Exception:  # noqa: S110 - a scrape must not fail on a store hiccup
            pass
        yield keys
        yield GaugeMetricFamily("keykeeper_sealed", "1 while sealed", value=int(self._sealed()))


class _CallbackCollector(Collector):
    """Cache hit and miss counters, and other counts kept elsewhere, read at scrape time."""

    def __init__(self) -> None:
        self.caches: dict[str, CacheStats] = {}
        self.dropped: dict[str, Callable[[], int]] = {}

    def collect(self) -> Iterable[Metric]:
        cache = CounterMetricFamily("keykeeper_cache_requests", "Cache lookups by cache "
                                    "(metadata, handles) and result (hit, miss)",
                                    labels=["cache", "result"])
        for name, stats in sorted(self.caches.items()):
            hits, misses = stats()
            cache.add_metric([name, "hit"], hits)
            cache.add_metric([name, "miss"], misses)
        yield cache
        dropped = CounterMetricFamily("keykeeper_monitor_dropped", "Audit events the "
                                      "monitor could not process (queue full) or count",
                                      labels=["what"])
        for name, count in sorted(self.dropped.items()):
            dropped.add_metric([name], count())
        yield dropped


class Metrics:
    """The registry and every series. ``key_counts()`` feeds ``keykeeper_keys``;
    ``max_keys`` bounds the distinct ``key`` labels of ``keykeeper_operations_total``."""

    def __init__(self, key_counts: KeyCounts, sealed: Callable[[], bool], *,
                 max_keys: int = 1000) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("keykeeper_requests", "Requests by route and outcome",
                                ["route", "outcome"], registry=r)
        self.latency = Histogram("keykeeper_request_seconds", "Request latency by route "
                                 "(operation), seconds", ["route"], registry=r,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25, 0.5, 1.0, 2.5))
        self.audit_alerts = Counter(
            "keykeeper_audit_alerts", "Audit trail alerts by kind (sink_failed, stalled, "
            "deleted, replaced, dropped, torn_tail, tail_unreadable, file_lost)", ["kind"],
            registry=r)
        self.operations = Counter("keykeeper_operations", "Audited operations by key id, "
                                  "operation and outcome (success, pending or the error "
                                  "code)", ["key", "operation", "outcome"], registry=r)
        self.alerts = Counter("keykeeper_alerts", "Alerts raised, after deduplication, by "
                              "rule and severity", ["rule", "severity"], registry=r)
        self.webhook_failures = Counter("keykeeper_alert_webhook_failures", "Alert webhook "
                                        "deliveries that failed or were dropped", registry=r)
        self.scheduler_runs = Counter("keykeeper_scheduler_runs", "Scheduler job runs by "
                                      "job and outcome", ["job", "outcome"], registry=r)
        self.scheduler_items = Counter("keykeeper_scheduler_items", "Items (keys) handled "
                                       "by scheduler jobs, by job and outcome (done, failed)",
                                       ["job", "outcome"], registry=r)
        self.scheduler_seconds = Histogram("keykeeper_scheduler_run_seconds", "Scheduler job "
                                           "run time, seconds", ["job"], registry=r,
                                           buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60,
                                                    300))
        self.leader = Gauge("keykeeper_scheduler_leader", "1 while this node runs the "
                            "scheduler's jobs", registry=r)
        r.register(_StateCollector(key_counts, sealed))
        self._callbacks = _CallbackCollector()
        r.register(self._callbacks)
        self._max_keys = max_keys
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._op_children: dict[tuple[str, str, str], Any] = {}

    def observe(self, route: str, outcome: str, seconds: float) -> None:
        """One REST request: its operation, outcome and latency in seconds."""
        child = self._children.get((route, outcome))
        if child is None:
            child = self._children[(route, outcome)] = (
                self.requests.labels(route, outcome), self.latency.labels(route))
        child[0].inc()
        child[1].observe(seconds)

    def operation(self, key_id: str | None, operation: str, outcome: str,
                  count: int = 1) -> None:
        """Count one audited operation (``keykeeper_operations_total``)."""
        key = key_id or ""
        child = self._op_children.get((key, operation, outcome))
        if child is None:
            with self._lock:
                if key and key not in self._keys:
                    if len(self._keys) >= self._max_keys:
                        key = OTHER
                    else:
                        self._keys.add(key)
                child = self.operations.labels(key, operation, outcome)
                if len(self._op_children) < 4 * self._max_keys * 16:
                    self._op_children[(key_id or "", operation, outcome)] = child
        child.inc(count)

    def audit_alert(self, kind: str) -> None:
        """Count one audit alert (``keykeeper_audit_alerts_total{kind}``)."""
        self.audit_alerts.labels(kind).inc()

    def alert(self, rule: str, severity: str) -> None:
        """Count one alert raised (``keykeeper_alerts_total{rule, severity}``)."""
        self.alerts.labels(rule, severity).inc()

    def webhook_failure(self) -> None:
        self.webhook_failures.inc()

    def scheduler_run(self, job: str, outcome: str, seconds: float, done: int,
                      failed: int) -> None:
        """One run of a scheduler job: its outcome (e.g. ``success``, ``error``), its run
        time in seconds, and how many items it finished and failed."""
        self.scheduler_runs.labels(job, outcome).inc()
        self.scheduler_items.labels(job, "done").inc(done)
        self.scheduler_items.labels(job, "failed").inc(failed)
        self.scheduler_seconds.labels(job).observe(seconds)

    def set_leader(self, is_leader: bool) -> None:
        """Whether this node runs the scheduler's jobs (``keykeeper_scheduler_leader``)."""
        self.leader.set(1 if is_leader else 0)

    def register_cache(self, name: str, stats: CacheStats) -> None:
        """Expose a cache's ``(hits, misses)`` as ``keykeeper_cache_requests_total``."""
        self._callbacks.caches[name] = stats

    def register_dropped(self, what: str, count: Callable[[], int]) -> None:
        """Expose a count of events the monitor dropped (``keykeeper_monitor_dropped``)."""
        self._callbacks.dropped[what] = count

    def render(self) -> bytes:
        return generate_latest(self.registry)
