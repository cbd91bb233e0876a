"""Compromise of a key (with its occurrence time) and of one version; dual control; the
refusal reaching another node within one second (two nodes over one PostgreSQL schema)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from keykeeper.errors import (
    ApprovalRequired,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from keykeeper.service.bulk_revoke import RevokeQuery
from keykeeper.service.context import RequestContext
from keykeeper.service.keys import CreateKey
from tests.identity.conftest import make_caller, root
from tests.integration.conftest import PASSPHRASE, Node, make_node


def test_key_compromise_records_when_it_happened(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="k"))
    svc.keys.rotate(ctx, "k")
    node.clock.advance(days=4)  # a compromise time may not precede the key's creation
    happened = node.clock() - timedelta(days=3)
    with pytest.raises(InvalidArgument):
        svc.keys.compromise(ctx, "k", "leak", compromise_time=node.clock() + timedelta(1))
    with pytest.raises(InvalidArgument):
        svc.keys.compromise(ctx, "k", "leak", compromise_time=datetime(2025, 1, 1))
    key = svc.keys.compromise(ctx, "k", "leak", compromise_time=happened)
    assert key.state == "compromised" and key.compromised_at == happened
    assert [(v.state, v.compromised_at, v.compromise_reason) for v in key.versions] == [
        ("compromised", happened, "leak")] * 2


def test_version_compromise_refuses_protect_with_that_version(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="v"))
    old = svc.crypto.encrypt(ctx, "v", b"old data").ciphertext
    svc.keys.rotate(ctx, "v")
    happened = node.clock() - timedelta(hours=1)
    key = svc.compromise.compromise_version(ctx, "v", 1, "laptop stolen",
                                            compromise_time=happened)
    v1 = key.version(1)
    assert v1 is not None and v1.state == "compromised" and v1.compromised_at == happened
    assert key.state == "active"
    assert svc.crypto.encrypt(ctx, "v", b"new").key_version == 2   # the primary still works
    with pytest.raises(FailedPrecondition):
        svc.compromise.compromise_version(ctx, "v", 1, "again")
    with pytest.raises(NotFound):
        svc.compromise.compromise_version(ctx, "v", 9, "no such version")
    svc.compromise.compromise_version(ctx, "v", 2, "the primary too")
    with pytest.raises(FailedPrecondition):
        svc.crypto.encrypt(ctx, "v", b"refused")
    with svc.deps.reading() as conn:
        events = svc.deps.keys.events(conn, key.id)
    assert [(e["action"], e["version"]) for e in events][-2:] == [
        ("compromise-version", 1), ("compromise-version", 2)]
    assert old  # decrypting it needs allow_compromised (engineer B1's check_use)


def test_version_compromise_is_dual_controlled(node: Node) -> None:
    svc = node.services
    svc.keys.create(root(node), CreateKey(name="dc"))
    svc.keys.rotate(root(node), "dc")
    officer = make_caller(node, ("crypto-officer",))
    ctx = RequestContext(interface="test", principal=svc.auth.authenticate(officer.token),
                         token=officer.token)
    with pytest.raises(ApprovalRequired) as pending:
        svc.compromise.compromise_version(ctx, "dc", 1, "suspected")
    assert svc.keys.get(root(node), "dc").version(1).state == "active"  # type: ignore[union-attr]
    approval_id = pending.value.approval_id  # type: ignore[attr-defined]
    for _ in range(2):
        custodian = make_caller(node, ("key-custodian",))
        svc.approvals.approve(RequestContext(
            interface="test", principal=svc.auth.authenticate(custodian.token),
            token=custodian.token), approval_id)
    v1 = svc.keys.get(root(node), "dc").version(1)
    assert v1 is not None and v1.state == "compromised" and v1.compromise_reason == "suspected"


def test_compromise_reaches_another_node_within_one_second(node: Node,
                                                           database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("several nodes share one store over PostgreSQL only")
    other = make_node(database_url, node.clock, metadata_ttl=1.0)
    other.services.system.unseal(PASSPHRASE)
    try:
        ctx_a, ctx_b = node.ctx(), other.ctx()
        node.services.keys.create(ctx_a, CreateKey(name="shared"))
        other.services.crypto.encrypt(ctx_b, "shared", b"x")       # B caches the key
        node.services.compromise.compromise_version(ctx_a, "shared", 1, "leak")
        started = time.monotonic()   # committed: from here, within one second
        refused_after = None
        while time.monotonic() - started < 1.5:
            attempt = time.monotonic() - started   # when this call was made
            try:
                other.services.crypto.encrypt(ctx_b, "shared", b"x")
            except FailedPrecondition:
                refused_after = attempt
                break
            time.sleep(0.01)
        # B's cached metadata (TTL 1 s) was loaded before the commit: a call made 1 s
        # after the commit at the latest is refused (its own duration aside: the
        # machine is shared and loaded).
        assert refused_after is not None and refused_after <= 1.0, refused_after
    finally:
        other.services.deps.engine.dispose()


def test_bulk_revoke_by_query(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.namespaces.create(ctx, "team-a")
    for name in ("a1", "a2", "a3"):
        svc.keys.create(ctx, CreateKey(name=name, namespace="team-a"))
    node.clock.advance(days=1)
    cutoff = node.clock()
    node.clock.advance(days=1)
    svc.keys.create(ctx, CreateKey(name="a-new", namespace="team-a"))
    svc.keys.create(ctx, CreateKey(name="elsewhere"))
    svc.keys.create(ctx, CreateKey(name="gone", namespace="team-a"))
    svc.keys.schedule_destruction(ctx, "team-a:gone", 7)

    with pytest.raises(InvalidArgument):
        svc.bulk_revoke.revoke(ctx, RevokeQuery(), "no filter")
    with pytest.raises(InvalidArgument):
        svc.bulk_revoke.revoke(ctx, RevokeQuery(namespace="team-a"), None)   # reason needed

    dry = svc.bulk_revoke.revoke(ctx, RevokeQuery(namespace="team-a", created_before=cutoff),
                                 None, dry_run=True)
    assert dry["matched"] == 3 and sorted(dry["keys"]) == ["team-a:a1", "team-a:a2",
                                                           "team-a:a3"]
    assert svc.keys.get(ctx, "team-a:a1").state == "active"

    done = svc.bulk_revoke.revoke(ctx, RevokeQuery(namespace="team-a", created_before=cutoff),
                                  "org-wide response")
    assert (done["matched"], done["revoked"], done["failed"]) == (3, 3, 0)
    for name in ("a1", "a2", "a3"):
        key = svc.keys.get(ctx, f"team-a:{name}")
        assert key.state == "compromised" and key.compromise_reason == "org-wide response"
    assert svc.keys.get(ctx, "team-a:a-new").state == "active"
    assert svc.keys.get(ctx, "elsewhere").state == "active"
    # A second run finds nothing left to revoke in that set (idempotent); pending keys
    # are revoked too (they end destroyed-compromised).
    again = svc.bulk_revoke.revoke(ctx, RevokeQuery(namespace="team-a"), "sweep")
    assert again["revoked"] == 2   # a-new and gone
    assert svc.keys.get(ctx, "team-a:gone").state == "pending-destruction"
    assert svc.keys.get(ctx, "team-a:gone").compromised_at is not None


def test_bulk_revoke_is_dual_controlled_and_scoped_to_the_caller(node: Node) -> None:
    svc = node.services
    svc.namespaces.create(root(node), "team-b")
    svc.keys.create(root(node), CreateKey(name="b1", namespace="team-b"))
    officer = make_caller(node, ("crypto-officer",))
    ctx = RequestContext(interface="test", principal=svc.auth.authenticate(officer.token),
                         token=officer.token)
    dry = svc.bulk_revoke.revoke(ctx, RevokeQuery(namespace="team-b"), None, dry_run=True)
    assert dry["matched"] == 1
    with pytest.raises(ApprovalRequired):
        svc.bulk_revoke.revoke(ctx, RevokeQuery(namespace="team-b"), "incident 7")
    assert svc.keys.get(root(node), "team-b:b1").state == "active"
    app = make_caller(node, ("application",))
    app_ctx = RequestContext(interface="test", principal=svc.auth.authenticate(app.token),
                             token=app.token)
    with pytest.raises(PermissionDenied):
        svc.bulk_revoke.revoke(app_ctx, RevokeQuery(namespace="team-b"), None, dry_run=True)


def test_naive_created_before_is_refused(node: Node) -> None:
    with pytest.raises(InvalidArgument):
        node.services.bulk_revoke.revoke(
            node.ctx(), RevokeQuery(created_before=datetime(2026, 1, 1)), None, dry_run=True)


def _caller(node: Node, role: str) -> RequestContext:
    made = make_caller(node, (role,))
    return RequestContext(interface="test", principal=node.services.auth.authenticate(
        made.token), token=made.token)


def _approve(node: Node, approval_id: str) -> None:
    for _ in range(2):
        node.services.approvals.approve(_caller(node, "key-custodian"), approval_id)


def test_approved_compromise_keeps_its_occurrence_time(node: Node) -> None:
    svc = node.services
    svc.keys.create(root(node), CreateKey(name="late"))
    node.clock.advance(days=3)  # a compromise time may not precede the key's creation
    happened = node.clock() - timedelta(days=2)
    with pytest.raises(ApprovalRequired) as pending:
        svc.keys.compromise(_caller(node, "crypto-officer"), "late", "audit finding",
                            compromise_time=happened)
    _approve(node, pending.value.approval_id)  # type: ignore[attr-defined]
    key = svc.keys.get(root(node), "late")
    assert key.state == "compromised" and key.compromised_at == happened


def test_approved_bulk_revoke_runs_the_query_and_isolates_failures(node: Node) -> None:
    """Once approved the query runs as the requester; a database trigger refusing one
    key's update (a real store failure) fails that key alone."""
    svc = node.services
    svc.namespaces.create(root(node), "team-c")
    keys = [svc.keys.create(root(node), CreateKey(name=f"c{i}", namespace="team-c"))
            for i in range(3)]
    engine = svc.deps.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(
                "CREATE TRIGGER refuse_revoke BEFORE UPDATE ON keys "
                f"WHEN OLD.id = '{keys[1].id}' BEGIN SELECT RAISE(ABORT, 'refused'); END"))
        else:
            conn.execute(text(
                "CREATE FUNCTION refuse_revoke() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"))
            conn.execute(text(
                "CREATE TRIGGER refuse_revoke BEFORE UPDATE ON keys FOR EACH ROW "
                f"WHEN (OLD.id = '{keys[1].id}') EXECUTE FUNCTION refuse_revoke()"))
    with pytest.raises(ApprovalRequired) as pending:
        svc.bulk_revoke.revoke(_caller(node, "crypto-officer"),
                               RevokeQuery(namespace="team-c"), "incident 12")
    _approve(node, pending.value.approval_id)  # type: ignore[attr-defined]
    states = {k.name: svc.keys.get(root(node), k.id).state for k in keys}
    assert states == {"c0": "compromised", "c1": "active", "c2": "compromised"}
    approval = svc.approvals.get(root(node), pending.value.approval_id)  # type: ignore[attr-defined]
    result = approval.result
    assert result is not None and (result["revoked"], result["failed"]) == (2, 1)
    assert result["errors"][0]["key"] == "team-c:c1"


def test_created_before_in_another_zone_means_the_same_instant(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.namespaces.create(ctx, "team-z")
    svc.keys.create(ctx, CreateKey(name="z1", namespace="team-z"))   # at 00:00 UTC
    plus_two = timezone(timedelta(hours=2))
    # 01:00+02:00 is 23:00 UTC the day before: the key is not older than that.
    before = datetime(2026, 1, 1, 1, 0, tzinfo=plus_two)
    assert svc.bulk_revoke.revoke(ctx, RevokeQuery(namespace="team-z", created_before=before),
                                  None, dry_run=True)["matched"] == 0
    after = datetime(2026, 1, 1, 3, 0, tzinfo=plus_two)               # 01:00 UTC
    assert svc.bulk_revoke.revoke(ctx, RevokeQuery(namespace="team-z", created_before=after),
                                  None, dry_run=True)["matched"] == 1


def test_report_without_the_database_audit_copy_says_so(node: Node) -> None:
    # This node's auditor writes to a list only (no database sink): an empty report would
    # falsely say nobody used the key, so the report refuses with the reason instead.
    from keykeeper.errors import Unavailable

    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="k"))
    with pytest.raises(Unavailable, match="database sink"):
        svc.compromise.report(ctx, "k")
