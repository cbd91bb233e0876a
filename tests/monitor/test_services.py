"""Alerts, usage statistics and the anomaly feed in-process, over both backends, with
the injected clock: deduplication across nodes, additive usage flushes, key usage reads,
and records of refused calls on an unusable key raising an alert."""

from __future__ import annotations

import time
from typing import Any

import pytest

from keykeeper.audit.records import AuditRecord
from keykeeper.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from keykeeper.service.context import Principal, RequestContext
from keykeeper.service.keys import CreateKey
from keykeeper.store.alerts import AlertFilter
from tests.integration.conftest import Node


def alerts(node: Node, **flt: Any) -> list[Any]:
    rows, _ = node.services.alerts.list(node.ctx(), AlertFilter(**flt), 1000, None)
    return rows


def alert_records(node: Node, wait: bool = True) -> list[AuditRecord]:
    """The ``alert`` records the node's sink holds (written by a sink thread: waited for,
    up to 2 s, when ``wait``)."""
    deadline = time.monotonic() + (2 if wait else 0)
    while True:
        found = [r for r in node.sink.records
                 if isinstance(r, AuditRecord) and r.operation == "alert"]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.01)


def test_alerts_deduplicate_across_nodes_within_the_window(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    a.services.alerts.raise_alert("expiry_notice", "info", "key:k-1", "expires soon",
                                  {"key_id": "k-1", "days": 30})
    a.clock.advance(seconds=30)
    b.services.alerts.raise_alert("expiry_notice", "info", "key:k-1", "expires soon",
                                  {"key_id": "k-1", "days": 30})
    [row] = alerts(a)
    assert (row.rule, row.subject, row.count, row.state) == ("expiry_notice", "key:k-1", 2,
                                                             "open")
    assert row.evidence == {"key_id": "k-1", "days": 30}
    assert (row.last_seen - row.first_seen).total_seconds() == 30
    # Notified once: one audit record (on the node that raised it first), none for the bump.
    [rec] = alert_records(a)
    assert rec.detail == "expires soon" and rec.reason == "expiry_notice"
    assert rec.principal is None
    time.sleep(0.2)
    assert alert_records(a) == [rec] and alert_records(b, wait=False) == []
    # Another subject, or the same one past the window: a new alert.
    b.services.alerts.raise_alert("expiry_notice", "info", "key:k-2", "other", {})
    a.clock.advance(seconds=601)
    a.services.alerts.raise_alert("expiry_notice", "info", "key:k-1", "again", {})
    assert sorted((r.subject, r.count) for r in alerts(a)) == [
        ("key:k-1", 1), ("key:k-1", 2), ("key:k-2", 1)]
    with pytest.raises(InvalidArgument):
        a.services.alerts.raise_alert("x", "loud", "s", "bad severity", {})


def test_list_filters_paginates_and_acknowledges(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    svc = a.services.alerts
    for i in range(5):
        a.clock.advance(seconds=1)
        svc.raise_alert("failure_burst" if i % 2 else "rate_spike", "warning",
                        f"principal:p{i}", f"summary {i}", {"i": i})
    page, token = svc.list(a.ctx(), AlertFilter(), 2, None)
    assert [r.subject for r in page] == ["principal:p4", "principal:p3"] and token
    page2, token2 = svc.list(a.ctx(), AlertFilter(), 2, token)
    page3, token3 = svc.list(a.ctx(), AlertFilter(), 2, token2)
    assert [r.subject for r in page2 + page3] == ["principal:p2", "principal:p1",
                                                  "principal:p0"]
    assert token3 is None
    assert {r.subject for r in alerts(a, rule="failure_burst")} == {"principal:p1",
                                                                    "principal:p3"}
    acked = svc.acknowledge(a.ctx(), page[0].id)
    assert (acked.state, acked.acknowledged_by) == ("acknowledged", "root")
    assert [r.id for r in alerts(a, state="acknowledged")] == [page[0].id]
    assert len(alerts(a, state="open")) == 4
    with pytest.raises(NotFound):
        svc.acknowledge(a.ctx(), "al-nope")
    with pytest.raises(InvalidArgument):
        svc.list(a.ctx(), AlertFilter(state="closed"), 10, None)
    with pytest.raises(InvalidArgument):
        svc.list(a.ctx(), AlertFilter(), 10, "garbage!")
    nobody = RequestContext(interface="test", principal=Principal("nobody"))
    with pytest.raises(PermissionDenied):
        svc.list(nobody, AlertFilter(), 10, None)


def test_usage_statistics_add_up_across_nodes(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    ctx = a.ctx()
    a.services.keys.create(ctx, CreateKey(name="orders"))
    for node, calls in ((a, 3), (b, 2)):
        for _ in range(calls):
            c = node.ctx()
            with node.services.audit.audited(c, "encrypt"):
                ct = node.services.crypto.encrypt(c, "orders", b"x").ciphertext
        c = node.ctx()
        with node.services.audit.audited(c, "decrypt"):
            node.services.crypto.decrypt(c, "orders", ct)
    a.clock.advance(seconds=5)
    c = a.ctx()
    with a.services.audit.audited(c, "encrypt"):
        a.services.crypto.encrypt(c, "orders", b"y")
    assert a.services.monitoring.flush() >= 1 and b.services.monitoring.flush() >= 1
    assert a.services.monitoring.flush() == 0                  # nothing new
    usage = a.services.monitoring.key_usage(a.ctx(), "orders")
    ops = {o["operation"]: o["count"] for o in usage["operations"]}
    assert ops == {"encrypt": 6, "decrypt": 2}
    assert usage["total"] == 8
    assert usage["principals"][0]["principal"] == "root"
    assert [(v["version"], v["count"]) for v in usage["versions"]] == [(1, 8)]
    assert usage["last_used"] == "2026-01-01T00:00:05Z"
    assert usage["first_used"] == "2026-01-01T00:00:00Z"
    nobody = RequestContext(interface="test", principal=Principal("nobody"))
    with pytest.raises(NotFound):
        a.services.monitoring.key_usage(nobody, "orders")


def test_use_of_a_disabled_key_raises_unusable_key_use(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    ctx = a.ctx()
    a.services.keys.create(ctx, CreateKey(name="old"))
    a.services.keys.disable(ctx, "old")
    c = a.ctx()
    c.source = "198.51.100.4"
    with pytest.raises(FailedPrecondition), a.services.audit.audited(c, "encrypt"):
        a.services.crypto.encrypt(c, "old", b"x")
    a.services.monitoring.drain()
    [row] = alerts(a, rule="unusable_key_use")
    assert row.severity == "warning"
    assert row.evidence["state"] == "suspended"
    assert row.evidence["principal"] == "root" and row.evidence["source"] == "198.51.100.4"
    [rec] = alert_records(a)
    assert rec.reason == "unusable_key_use"


def test_a_dead_webhook_never_blocks_and_is_counted(nodes: tuple[Node, Node]) -> None:
    import socket

    from keykeeper.monitor.metrics import Metrics
    from keykeeper.service.alerts import AlertService, AlertSettings

    a, _ = nodes
    # A webhook that accepts connections and never answers: each delivery hangs until its
    # timeout (4 s), so a caller that waited on delivery would take 4 s for the first alert.
    with socket.socket() as hook:
        hook.bind(("127.0.0.1", 0))
        hook.listen(8)
        port = hook.getsockname()[1]
        metrics = Metrics(lambda: {}, lambda: False)
        svc = AlertService(a.services.deps, a.services.authz, a.services.audit,
                           AlertSettings(webhook=f"http://127.0.0.1:{port}/hook",
                                         webhook_timeout=4.0), metrics)
        svc.start()
        try:
            started = time.monotonic()
            for i in range(3):
                svc.raise_alert("failure_burst", "critical", f"source:10.0.0.{i}", "burst",
                                {})
            assert time.monotonic() - started < 3.5  # the caller never waits on delivery
            deadline = time.monotonic() + 20  # the deliveries time out one after another
            while time.monotonic() < deadline and metrics.registry.get_sample_value(
                    "keykeeper_alert_webhook_failures_total") != 3:
                time.sleep(0.2)
        finally:
            svc.stop()
    assert metrics.registry.get_sample_value("keykeeper_alert_webhook_failures_total") == 3
    assert metrics.registry.get_sample_value(
        "keykeeper_alerts_total", {"rule": "failure_burst", "severity": "critical"}) == 3


def test_a_failing_listener_never_fails_the_request(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes

    def broken(record: AuditRecord, ctx: RequestContext | None) -> None:
        raise RuntimeError("listener bug")

    a.services.audit.listeners.insert(0, broken)
    ctx = a.ctx()
    with a.services.audit.audited(ctx, "random"):
        a.services.crypto.random(ctx, 8)
    assert a.services.audit.listener_errors == 1
    assert any(isinstance(r, AuditRecord) and r.operation == "random"
               for r in a.sink.records)
