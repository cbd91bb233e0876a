"""Each key a scheduler job acts on has its own audit record (operation ``key.rotate``,
``key.destroy``, ``key.activate``, ``key.deactivate``, ``key.deactivate_version``;
interface and principal ``scheduler``; the key's id and namespace; for a rotation the new
version), besides the run's record with its counts: the audit trail traces scheduled
changes to keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from keykeeper.audit.records import AuditRecord
from tests.scheduler.conftest import Harness

DAY = 86_400


def _records(harness: Harness, key_id: str) -> list[AuditRecord]:
    return [r for r in harness.node.sink.records
            if isinstance(r, AuditRecord) and r.key_id == key_id
            and r.interface == "scheduler"]


def _fields(r: AuditRecord) -> tuple[Any, ...]:
    return (r.operation, r.outcome, r.error_code, r.principal, r.namespace, r.key_version)


def test_scheduled_rotation_is_audited_per_key(harness: Harness) -> None:
    clock = harness.node.clock
    a = harness.create("rot-a", rotation_period=DAY)
    b = harness.create("rot-b", rotation_period=DAY)
    clock.advance(days=1)
    assert harness.scheduler.run_due()["rotation"].done == 2
    for key in (a, b):
        (record,) = _records(harness, key.id)
        assert _fields(record) == ("key.rotate", "success", None, "scheduler", "default", 2)
    clock.advance(days=1)
    harness.scheduler.run_due()
    assert [r.key_version for r in _records(harness, a.id)] == [2, 3]
    # The run's record is still written, with the counts.
    runs = [r for r in harness.node.sink.records
            if isinstance(r, AuditRecord) and r.operation == "scheduler.rotation"]
    assert [r.items for r in runs] == [2, 2]


def test_failed_rotation_is_audited_with_its_code(harness: Harness) -> None:
    clock = harness.node.clock
    bad = harness.create("rot-bad", rotation_period=DAY)
    harness.set(bad.id, algorithm="NOT_AN_ALGORITHM")
    clock.advance(days=1)
    assert harness.scheduler.run_due()["rotation"].failed == 1
    (record,) = _records(harness, bad.id)
    assert record.operation == "key.rotate" and record.outcome == "error"
    assert record.error_code and record.key_version is None
    assert record.namespace == "default"


def test_scheduled_destruction_is_audited_per_key(harness: Harness) -> None:
    clock = harness.node.clock
    key = harness.create("doomed")
    harness.node.services.keys.schedule_destruction(harness.node.ctx(), key.ref, 7)
    clock.advance(days=7)
    assert harness.scheduler.run_due()["destruction"].done == 1
    (record,) = _records(harness, key.id)
    assert _fields(record) == ("key.destroy", "success", None, "scheduler", "default", None)


def test_crypto_period_transitions_are_audited_per_key(harness: Harness) -> None:
    clock = harness.node.clock
    later = harness.create("later")
    harness.set(later.id, state="pre-active", activation_date=clock.now + timedelta(hours=1))
    ending = harness.create("ending")
    harness.set(ending.id, deactivation_date=clock.now + timedelta(hours=1))
    short = harness.create("short-lived")
    harness.set(short.id, originator_usage_period=3600, recipient_usage_period=DAY)
    clock.advance(hours=1)
    assert harness.scheduler.run_due()["crypto_periods"].done == 3
    assert [_fields(r) for r in _records(harness, later.id)] == [
        ("key.activate", "success", None, "scheduler", "default", None)]
    assert [_fields(r) for r in _records(harness, ending.id)] == [
        ("key.deactivate", "success", None, "scheduler", "default", None)]
    assert [_fields(r) for r in _records(harness, short.id)] == [
        ("key.deactivate_version", "success", None, "scheduler", "default", 1)]


def test_nothing_due_writes_no_key_record(harness: Harness) -> None:
    key = harness.create("quiet", rotation_period=30 * DAY)
    harness.scheduler.run_due()
    assert _records(harness, key.id) == []
