"""Time-travel tests of every lifecycle schedule: the injected clock moves, ``run_due``
runs what is due, and the store shows the outcome."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from keykeeper.authz.model import Principal
from keykeeper.domain.states import KeyState, VersionState
from keykeeper.service.context import RequestContext
from keykeeper.store.schema import approvals, scheduler_jobs
from tests.scheduler.conftest import Harness

DAY = 86_400


def test_nothing_due_nothing_done(harness: Harness) -> None:
    key = harness.create("quiet", rotation_period=30 * DAY)
    ran = harness.scheduler.run_due()
    assert set(ran) == {"crypto_periods", "expiry_notices", "rotation", "destruction",
                        "approval_expiry"}
    assert all(r.done == 0 and r.failed == 0 for r in ran.values())
    assert len(harness.key(key.id).versions) == 1


def test_rotation_by_period(harness: Harness) -> None:
    clock = harness.node.clock
    key = harness.create("periodic", rotation_period=7 * DAY)
    clock.advance(days=7, seconds=-60)
    assert harness.scheduler.run_due()["rotation"].done == 0
    assert harness.scheduler.run_due() == {}   # each job waits its interval (60 s here)
    clock.advance(seconds=60)
    assert harness.scheduler.run_due()["rotation"].done == 1
    after = harness.key(key.id)
    assert [v.version for v in after.versions] == [1, 2] and after.primary_version == 2
    assert after.next_rotation_time == clock.now + timedelta(days=7)
    (event,) = harness.events(key.id, "rotate")
    assert (event.principal, event.reason, event.version) == ("scheduler", "scheduled", 2)
    clock.advance(days=7)
    harness.scheduler.run_due()
    assert harness.key(key.id).primary_version == 3


def test_usage_triggered_rotation(harness: Harness) -> None:
    clock = harness.node.clock
    key = harness.create("busy")
    # What the usage counter does at the soft threshold (service/usage.py).
    harness.set(key.id, next_rotation_time=clock.now, rotation_reason="usage")
    assert harness.scheduler.run_due()["rotation"].done == 1
    after = harness.key(key.id)
    assert after.primary_version == 2
    assert after.next_rotation_time is None and after.rotation_reason is None
    (event,) = harness.events(key.id, "rotate")
    assert event.reason == "usage"


def test_activation_date(harness: Harness) -> None:
    clock = harness.node.clock
    key = harness.create("later")
    harness.set(key.id, state="pre-active", activation_date=clock.now + timedelta(hours=1))
    harness.scheduler.run_due()
    assert harness.key(key.id).state == KeyState.PRE_ACTIVE
    clock.advance(hours=1)
    assert harness.scheduler.run_due()["crypto_periods"].done == 1
    assert harness.key(key.id).state == KeyState.ACTIVE
    (event,) = harness.events(key.id, "activate")
    assert (event.from_state, event.to_state, event.principal) == (
        "pre-active", "active", "scheduler")


def test_deactivation_date(harness: Harness) -> None:
    clock = harness.node.clock
    active = harness.create("ending", rotation_period=DAY)
    suspended = harness.create("ending-disabled")
    for k in (active, suspended):
        harness.set(k.id, deactivation_date=clock.now + timedelta(hours=2))
    harness.set(suspended.id, state="suspended")
    clock.advance(hours=2)
    assert harness.scheduler.run_due()["crypto_periods"].done == 2
    assert harness.key(active.id).state == KeyState.DEACTIVATED
    assert harness.key(suspended.id).state == KeyState.DEACTIVATED
    assert len(harness.events(active.id, "deactivate")) == 1
    clock.advance(days=1)  # a deactivated key is not rotated
    harness.scheduler.run_due()
    assert len(harness.key(active.id).versions) == 1


def test_version_deactivated_past_originator_period(harness: Harness) -> None:
    clock = harness.node.clock
    key = harness.create("short-lived")
    other = harness.create("long-lived")
    harness.set(key.id, originator_usage_period=2 * 3600, recipient_usage_period=DAY)
    clock.advance(hours=2)
    assert harness.scheduler.run_due()["crypto_periods"].done == 1
    (v1,) = harness.key(key.id).versions
    assert v1.state == VersionState.DEACTIVATED and v1.deactivated_at == clock.now
    assert harness.key(other.id).versions[0].state == VersionState.ACTIVE
    (event,) = harness.events(key.id, "deactivate-version")
    assert (event.version, event.principal) == (1, "scheduler")


def test_namespace_period_applies(harness: Harness) -> None:
    from keykeeper.store.schema import namespaces
    clock = harness.node.clock
    key = harness.create("ns-period")
    deps = harness.node.services.deps
    with deps.transaction() as conn:
        conn.execute(namespaces.update().where(namespaces.c.name == "default")
                     .values(originator_usage_period=3 * 3600))
    clock.advance(hours=3)
    harness.scheduler.run_due()
    assert harness.key(key.id).versions[0].state == VersionState.DEACTIVATED


def test_expiry_notice(harness: Harness) -> None:
    clock = harness.node.clock
    key = harness.create("expiring")
    harness.set(key.id, originator_usage_period=40 * DAY, recipient_usage_period=400 * DAY)
    harness.scheduler.run_due()
    assert harness.notices == []
    clock.advance(days=11)  # the originator period now ends in 29 days
    harness.scheduler.run_due()
    (notice,) = harness.notices
    rule, severity, subject, summary, evidence = notice
    assert (rule, severity) == ("crypto_period_expiry", "warning")
    assert key.id in subject and "originator" in summary
    assert evidence["key_id"] == key.id and evidence["version"] == 1
    assert evidence["period"] == "originator" and evidence["days_left"] == 29.0


def test_scheduled_destruction(harness: Harness) -> None:
    clock = harness.node.clock
    svc = harness.node.services
    key = harness.create("doomed")
    keep = harness.create("kept")
    svc.keys.schedule_destruction(harness.node.ctx(), key.ref, 7)
    clock.advance(days=7, seconds=-60)
    assert harness.scheduler.run_due()["destruction"].done == 0
    clock.advance(seconds=60)
    assert harness.scheduler.run_due()["destruction"].done == 1
    assert harness.key(key.id).state == KeyState.DESTROYED
    assert harness.key(keep.id).state == KeyState.ACTIVE


def test_approval_expiry(harness: Harness) -> None:
    clock = harness.node.clock
    svc = harness.node.services
    alice = RequestContext(interface="test", principal=Principal("alice", kind="person"))
    try:
        svc.approvals.gate(alice, "namespace.delete", {"namespace": "x"},
                           summary="delete namespace x", namespace="x")
        raise AssertionError("the gate should have filed a request")
    except Exception as exc:
        assert getattr(exc, "code", None) == "approval_required", exc
    harness.scheduler.run_due()
    deps = svc.deps
    with deps.reading() as conn:
        (row,) = list(conn.execute(select(approvals.c.state, approvals.c.expires_at)))
    assert row.state == "pending"
    clock.now = row.expires_at.replace(tzinfo=clock.now.tzinfo) + timedelta(seconds=1)
    assert harness.scheduler.run_due()["approval_expiry"].done == 1
    with deps.reading() as conn:
        assert conn.execute(select(approvals.c.state)).scalar_one() == "expired"


def test_running_twice_changes_nothing(harness: Harness) -> None:
    clock = harness.node.clock
    a = harness.create("twice-a", rotation_period=DAY)
    b = harness.create("twice-b")
    harness.set(b.id, state="pre-active", activation_date=clock.now + timedelta(hours=1))
    clock.advance(days=1)
    first = {n: harness.scheduler.run_job(n) for n in harness.scheduler.job_names}
    assert first["rotation"].done == 1 and first["crypto_periods"].done == 1
    before = (harness.key(a.id), harness.key(b.id))
    second = {n: harness.scheduler.run_job(n) for n in harness.scheduler.job_names}
    assert all(r.done == 0 and r.failed == 0 for r in second.values())
    assert (harness.key(a.id), harness.key(b.id)) == before
    assert len(harness.events(a.id, "rotate")) == 1


def test_a_failing_key_does_not_stop_the_others(harness: Harness) -> None:
    clock = harness.node.clock
    good = [harness.create(f"good-{i}", rotation_period=DAY) for i in range(3)]
    bad = harness.create("bad", rotation_period=DAY)
    # A key the job cannot rotate: its algorithm is unknown (as after a bad manual edit).
    harness.set(bad.id, algorithm="NOT_AN_ALGORITHM")
    clock.advance(days=1)
    result = harness.scheduler.run_due()["rotation"]
    assert (result.done, result.failed) == (3, 1)
    assert all(harness.key(k.id).primary_version == 2 for k in good)
    with harness.node.services.deps.reading() as conn:
        row = conn.execute(select(scheduler_jobs).where(
            scheduler_jobs.c.name == "rotation")).one()
    assert (row.last_outcome, row.items_done, row.items_failed) == ("partial", 3, 1)
    assert ("rotation", "partial", 3, 1) in harness.runs
    (record,) = [r for r in harness.node.sink.records
                 if getattr(r, "operation", "") == "scheduler.rotation"]
    assert (record.outcome, record.error_code, record.items, record.failed_items) == (
        "error", "partial", 3, 1)


def test_each_run_is_audited(harness: Harness) -> None:
    clock = harness.node.clock
    harness.create("audited", rotation_period=DAY)
    clock.advance(days=1)
    harness.scheduler.run_due()
    records = [r for r in harness.node.sink.records
               if getattr(r, "operation", "") == "scheduler.rotation"]
    (record,) = records
    assert record.principal == "scheduler" and record.interface == "scheduler"
    assert (record.items, record.failed_items, record.outcome) == (1, 0, "success")
    # Runs that found nothing to do are counted in metrics, not written to the chain.
    assert not [r for r in harness.node.sink.records
                if getattr(r, "operation", "") == "scheduler.destruction"]
    assert ("destruction", "success", 0, 0) in harness.runs


def test_rotation_of_every_kind_of_key(harness: Harness) -> None:
    """Symmetric, asymmetric and MAC keys all rotate (the clouds rotate symmetric only)."""
    clock = harness.node.clock
    svc, ctx = harness.node.services, harness.node.ctx()
    aes = harness.create("k-aes", rotation_period=DAY)
    old = svc.crypto.encrypt(ctx, aes.ref, b"before")
    made = [aes] + [harness.create(f"k-{alg.lower()}", purpose=purpose, algorithm=alg,
                                   rotation_period=DAY)
                    for purpose, alg in (("sign", "ED25519"), ("sign", "ECDSA_P256_SHA256"),
                                         ("mac", "HMAC_SHA256"), ("kem", "ML_KEM_768"))]
    clock.advance(days=1)
    assert harness.scheduler.run_due()["rotation"].done == len(made)
    for k in made:
        after = harness.key(k.id)
        assert after.primary_version == 2, k.algorithm
        if k.algorithm != "AES_256_GCM" and k.algorithm != "HMAC_SHA256":
            assert after.versions[1].public_key_pem, k.algorithm
    new = svc.crypto.encrypt(ctx, aes.ref, b"after")
    assert new.key_version == 2
    assert svc.crypto.decrypt(ctx, aes.ref, old.ciphertext)[0] == b"before"
    assert svc.crypto.decrypt(ctx, aes.ref, new.ciphertext) == (b"after", 2)


def test_two_leaders_at_once_never_duplicate_a_rotation(harness: Harness) -> None:
    """Two rotation runs at the same time (a split brain during failover): each key still
    gets exactly one new version (row lock and re-check in each transaction)."""
    import threading

    from keykeeper.service.rotation import Rotator
    clock = harness.node.clock
    svc = harness.node.services
    made = [harness.create(f"race-{i}", rotation_period=DAY) for i in range(30)]
    clock.advance(days=1)
    rotators = [Rotator(svc.deps, svc.lookup, page_size=7) for _ in range(2)]
    results: list[object] = []
    threads = [threading.Thread(target=lambda r=r: results.append(r.run(clock.now)))
               for r in rotators]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.done for r in results) == len(made)          # type: ignore[attr-defined]
    assert all(r.failed == 0 for r in results)                 # type: ignore[attr-defined]
    for k in made:
        assert [v.version for v in harness.key(k.id).versions] == [1, 2]
        assert len(harness.events(k.id, "rotate")) == 1


def test_recipient_notice_for_a_deactivated_version(harness: Harness) -> None:
    clock = harness.node.clock
    key = harness.create("winding-down")
    harness.set(key.id, originator_usage_period=2 * 3600, recipient_usage_period=40 * DAY)
    clock.advance(hours=2)
    harness.scheduler.run_due()
    assert harness.key(key.id).versions[0].state == VersionState.DEACTIVATED
    assert harness.notices == []                    # the recipient period ends in ~40 days
    clock.advance(days=15)
    harness.scheduler.run_due()
    (notice,) = harness.notices
    assert notice[4]["period"] == "recipient" and "decrypt or verify" in notice[3]
    assert len(harness.events(key.id, "deactivate-version")) == 1   # not repeated


def test_stored_data_has_no_crypto_period(harness: Harness) -> None:
    """A Secret Data object (purpose store) outlives every key crypto-period: SP 800-57
    periods are for keys; a key made at the same time is deactivated meanwhile."""
    from keykeeper.kmip.ttlv import Item, ItemType
    from keykeeper.kmip.ttlv.enums import KeyFormatType, ObjectType, Operation, SecretDataType
    from keykeeper.kmip.ttlv.tags import Tag
    from tests.kmip.objects_support import Kmip, enum, struct, template, uid_of

    kmip = Kmip(harness.node, (2, 1))
    secret = struct(Tag.SECRET_DATA, enum(Tag.SECRET_DATA_TYPE, SecretDataType.PASSWORD),
                    struct(Tag.KEY_BLOCK, enum(Tag.KEY_FORMAT_TYPE, KeyFormatType.OPAQUE),
                           struct(Tag.KEY_VALUE, Item(int(Tag.KEY_MATERIAL),
                                                      ItemType.BYTE_STRING, b"hunter2!"))))
    uid = uid_of(kmip(Operation.REGISTER, enum(Tag.OBJECT_TYPE, ObjectType.SECRET_DATA),
                      template(kmip.version), secret))
    kmip(Operation.ACTIVATE, Item(int(Tag.UNIQUE_IDENTIFIER), ItemType.TEXT_STRING, uid))
    stored = uid.split("/")[0]
    key = harness.create("keyed-then")
    harness.node.clock.advance(days=6 * 365)
    harness.scheduler.run_due()
    assert harness.key(key.id).versions[0].state == VersionState.DEACTIVATED
    assert harness.key(stored).state == KeyState.ACTIVE
    assert harness.key(stored).versions[0].state == VersionState.ACTIVE
    assert harness.events(stored, "deactivate-version") == []
    assert not [n for n in harness.notices if stored in str(n)]
