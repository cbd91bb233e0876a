"""Prometheus metrics on an explicit registry (no import-time globals)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Metrics"]


class _StateCollector(Collector):
    def __init__(self, keys_by_state: Callable[[], Mapping[str, int]],
                 sealed: Callable[[], bool]) -> None:
        self._keys_by_state = keys_by_state
        self._sealed = sealed

    def collect(self) -> Iterable[GaugeMetricFamily]:
        keys = GaugeMetricFamily("keykeeper_keys", "Managed keys by state", labels=["state"])
        try:
            for state, n in sorted(self._keys_by_state().items()):
                keys.add_metric([state], n)
        except Exception:  # noqa: S110 - a scrape must not fail on a store hiccup
            pass
        yield keys
        yield GaugeMetricFamily("keykeeper_sealed", "1 while sealed", value=int(self._sealed()))


class Metrics:
    def __init__(self, keys_by_state: Callable[[], Mapping[str, int]],
                 sealed: Callable[[], bool]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("keykeeper_requests", "Requests by route and outcome",
                                ["route", "outcome"], registry=self.registry)
        self.latency = Histogram("keykeeper_request_seconds", "Request latency by route",
                                 ["route"], registry=self.registry,
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25, 0.5, 1.0, 2.5))
        self.audit_alerts = Counter(
            "keykeeper_audit_alerts", "Audit trail alerts by kind (sink_failed, stalled, "
            "deleted, replaced, dropped, torn_tail, tail_unreadable, file_lost)", ["kind"],
            registry=self.registry)
        self.registry.register(_StateCollector(keys_by_state, sealed))
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def observe(self, route: str, outcome: str, seconds: float) -> None:
        child = self._children.get((route, outcome))
        if child is None:
            child = self._children[(route, outcome)] = (
                self.requests.labels(route, outcome), self.latency.labels(route))
        child[0].inc()
        child[1].observe(seconds)

    def audit_alert(self, kind: str) -> None:
        """Count one audit alert (``keykeeper_audit_alerts_total{kind}``)."""
        self.audit_alerts.labels(kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
