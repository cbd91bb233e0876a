"""The metrics registry: bounded key cardinality, scheduler series, caches, alerts."""

from __future__ import annotations

from keykeeper.monitor.metrics import Metrics


def sample(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_operations_by_key_are_bounded_by_max_keys() -> None:
    m = Metrics(lambda: {}, lambda: False, max_keys=2)
    for key in ("k-a", "k-b", "k-c", "k-d", "k-a"):
        m.operation(key, "encrypt", "success")
    m.operation(None, "principal.create", "permission_denied")
    assert sample(m, "keykeeper_operations_total", key="k-a", operation="encrypt",
                  outcome="success") == 2
    assert sample(m, "keykeeper_operations_total", key="k-b", operation="encrypt",
                  outcome="success") == 1
    assert sample(m, "keykeeper_operations_total", key="other", operation="encrypt",
                  outcome="success") == 2
    assert sample(m, "keykeeper_operations_total", key="", operation="principal.create",
                  outcome="permission_denied") == 1


def test_scheduler_leader_cache_alert_and_key_series() -> None:
    m = Metrics(lambda: {("active", "AES_256_GCM", "default"): 3, ("suspended", "ED25519",
                                                                   "pki"): 1},
                lambda: True)
    m.scheduler_run("rotation", "success", 0.2, done=5, failed=1)
    m.scheduler_run("rotation", "error", 1.5, done=0, failed=0)
    m.set_leader(True)
    m.register_cache("metadata", lambda: (7, 3))
    m.alert("failure_burst", "critical")
    assert sample(m, "keykeeper_scheduler_runs_total", job="rotation", outcome="success") == 1
    assert sample(m, "keykeeper_scheduler_items_total", job="rotation", outcome="done") == 5
    assert sample(m, "keykeeper_scheduler_items_total", job="rotation", outcome="failed") == 1
    assert sample(m, "keykeeper_scheduler_run_seconds_count", job="rotation") == 2
    assert sample(m, "keykeeper_scheduler_run_seconds_sum", job="rotation") == 1.7
    assert sample(m, "keykeeper_scheduler_leader") == 1
    m.set_leader(False)
    assert sample(m, "keykeeper_scheduler_leader") == 0
    assert sample(m, "keykeeper_cache_requests_total", cache="metadata", result="hit") == 7
    assert sample(m, "keykeeper_cache_requests_total", cache="metadata", result="miss") == 3
    assert sample(m, "keykeeper_alerts_total", rule="failure_burst", severity="critical") == 1
    assert sample(m, "keykeeper_keys", state="suspended", algorithm="ED25519",
                  namespace="pki") == 1
    assert sample(m, "keykeeper_sealed") == 1


def test_a_failing_key_census_does_not_fail_the_scrape() -> None:
    def broken() -> dict[tuple[str, str, str], int]:
        raise RuntimeError("store down")

    m = Metrics(broken, lambda: False)
    assert b"keykeeper_sealed 0.0" in m.render()
