"""The rules of a restore (issue 7 §2; service/backup_restore.py, backup_target.py,
backup_writer.py), from a new user's and a breaker's findings:

- identity and policy rows (principals, tokens, roles, grants, policies) are restored only
  into an EMPTY instance (one definition: ``not_empty_reason``), where the archive's grants
  replace the default ones instead of doubling them; a forced restore into a non-empty
  instance never touches them;
- a forced restore never deletes a namespace, key or version: it adds what the target
  lacks and keeps what it has (newer versions, key rows, names taken by other keys);
- versions destroyed here stay destroyed with their own destroyed_at and no new event,
  unless ``restore_destroyed``, which writes a key event and an audit record naming the
  principal, the request and the approval;
- the archive's signer must be this instance's or pinned, whatever opens the archive.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from keykeeper.audit.records import AuditRecord
from keykeeper.authz.model import Grant, Principal, Scope
from keykeeper.backup import ArchiveInvalid
from keykeeper.errors import ApprovalRequired, FailedPrecondition
from keykeeper.service.backup_restore import not_empty_reason
from keykeeper.service.key_args import CreateKey
from keykeeper.store import schema
from tests.approvals.conftest import Team, team
from tests.backup.conftest import backups, make_archive, restore
from tests.integration.conftest import Node

__all__ = ["team"]

IDENTITY = (schema.principals, schema.tokens, schema.roles, schema.grants,
            schema.system_config)


def _add_principal(n: Node, name: str) -> str:
    """A principal with a live token; the token's hash."""
    deps, now = n.services.deps, n.clock()
    token_hash = secrets.token_hex(32)
    with deps.transaction() as conn:
        deps.identity.insert_principal(conn, Principal(
            name=name, kind="person", roles=("key-custodian",), created_by="test",
            created_at=now, updated_at=now))
        deps.identity.insert_token(
            conn, token_hash=token_hash, accessor="acc-" + secrets.token_hex(16),
            principal=name, display_name="test", created_by="test", created_at=now,
            expires_at=None, ttl=None)
    return token_hash


def _rows(n: Node, table: Any) -> list[Any]:
    with n.services.deps.reading() as conn:
        return list(conn.execute(table.select()).all())


def _identity(n: Node) -> dict[str, list[str]]:
    return {t.name: sorted(map(repr, _rows(n, t))) for t in IDENTITY}


def _reason(n: Node) -> str | None:
    with n.services.deps.reading() as conn:
        return not_empty_reason(conn)


def _grants(n: Node) -> list[tuple[str, str, str, str]]:
    return sorted((g.grantee_kind, g.grantee, g.operations, g.namespace)
                  for g in _rows(n, schema.grants))


# -- identity and policy: only into an empty instance --------------------------------------

def test_forced_restore_touches_no_identity_or_policy(node: Node, tmp_path: Path) -> None:
    """Revoked tokens stay revoked, deleted grants stay deleted, nothing is added."""
    svc, ctx = node.services, node.ctx()
    alice = _add_principal(node, "alice")
    svc.keys.create(ctx, CreateKey(name="k1"))
    archive = tmp_path / "a.backup"
    shares = make_archive(node, archive)
    with svc.deps.transaction() as conn:  # after the backup: revoke, delete a grant
        conn.execute(update(schema.tokens).where(schema.tokens.c.token_hash == alice)
                     .values(revoked_at=node.clock()))
        first = conn.execute(select(schema.grants.c.id).limit(1)).scalar_one()
        conn.execute(schema.grants.delete().where(schema.grants.c.id == first))
    before = _identity(node)

    result = restore(node, archive, shares=shares[:2], force=True)
    assert not result.identity_restored
    assert result.skipped["principals"] == 1 and result.skipped["tokens"] == 1
    assert result.skipped["grants"] >= 1 and result.skipped["roles"] >= 1
    assert _identity(node) == before
    (token,) = [t for t in _rows(node, schema.tokens) if t.token_hash == alice]
    assert token.revoked_at is not None


def test_empty_restore_replaces_the_default_grants(node: Node, target_factory: Any,
                                                   tmp_path: Path) -> None:
    svc, ctx = node.services, node.ctx()
    _add_principal(node, "bob")
    svc.keys.create(ctx, CreateKey(name="k1"))
    archive = tmp_path / "a.backup"
    shares = make_archive(node, archive)
    target = target_factory("sqlite")
    assert _reason(target) is None
    result = restore(target, archive, shares=shares[:2])
    assert result.identity_restored and result.added["principals"] == 1
    assert _grants(target) == _grants(node)  # the archive's, not the seed's added to them
    assert [p.name for p in _rows(target, schema.principals)] == ["bob"]


@pytest.mark.parametrize("extra", ["principal", "grant", "role"])
def test_an_instance_with_identity_rows_is_not_empty(node: Node, target_factory: Any,
                                                     tmp_path: Path, extra: str) -> None:
    node.services.keys.create(node.ctx(), CreateKey(name="k1"))
    archive = tmp_path / "a.backup"
    shares = make_archive(node, archive)
    target = target_factory("sqlite")
    deps, now = target.services.deps, target.clock()
    if extra == "principal":
        _add_principal(target, "carol")
    elif extra == "grant":
        with deps.transaction() as conn:
            deps.identity.insert_grant(conn, Grant(
                id="g-" + secrets.token_hex(16), grantee_kind="principal", grantee="dave",
                operations=("key.encrypt",), scope=Scope("*", "*", {}),  # type: ignore[arg-type]
                created_by="so", created_at=now))
    else:
        with deps.transaction() as conn:
            conn.execute(update(schema.roles).where(schema.roles.c.name == "auditor")
                         .values(operations='["key.*"]'))
    reason = _reason(target)
    assert reason is not None and extra in reason
    before = _identity(target)
    with pytest.raises(FailedPrecondition, match=f"not empty .*{extra}"):
        restore(target, archive, shares=shares[:2])
    assert _identity(target) == before and not _rows(target, schema.keys)


# -- key data: added, never deleted ---------------------------------------------------------

def test_forced_restore_adds_what_is_missing_and_deletes_nothing(
        node: Node, target_factory: Any, tmp_path: Path) -> None:
    svc, ctx = node.services, node.ctx()
    svc.namespaces.create(ctx, "payments")
    orders = svc.keys.create(ctx, CreateKey(name="orders"))
    svc.keys.rotate(ctx, "orders")
    svc.keys.create(ctx, CreateKey(name="cards", namespace="payments"))
    first = tmp_path / "first.backup"
    shares = make_archive(node, first)

    target = target_factory("postgresql")
    t, tctx = target.services, target.ctx()
    restore(target, first, shares=shares[:2])
    t.keys.rotate(tctx, "orders")                          # version 3, after the backup
    t.namespaces.create(tctx, "late")
    late = t.keys.create(tctx, CreateKey(name="late-key", namespace="late"))
    golden = t.crypto.encrypt(tctx, "orders", b"under version three").ciphertext
    mine = t.keys.create(tctx, CreateKey(name="same-name"))

    # The source moves on too: a new namespace and key, a key whose name the target took.
    svc.namespaces.create(ctx, "identity")
    added = svc.keys.create(ctx, CreateKey(name="badge", namespace="identity"))
    source_golden = svc.crypto.encrypt(ctx, "identity:badge", b"from the source").ciphertext
    svc.keys.create(ctx, CreateKey(name="same-name"))
    second = tmp_path / "second.backup"
    shares2 = make_archive(node, second)

    result = restore(target, second, shares=shares2[:2], force=True)
    assert result.added == {"namespaces": 1, "keys": 1, "key_versions": 1, "key_events": 1}
    assert result.kept == {"namespaces": 2, "keys": 2, "key_versions": 3}
    assert result.conflicts == ["default:same-name"]
    assert not result.kept_destroyed and not result.restored_destroyed

    kept = t.keys.get(tctx, "orders")
    assert kept.id == orders.id and kept.primary_version == 3
    assert [v.version for v in kept.versions] == [1, 2, 3]
    assert t.crypto.decrypt(tctx, "orders", golden)[0] == b"under version three"
    assert t.keys.get(tctx, "late:late-key").id == late.id
    assert t.keys.get(tctx, "same-name").id == mine.id
    assert t.keys.get(tctx, "identity:badge").id == added.id
    assert t.crypto.decrypt(tctx, "identity:badge", source_golden)[0] == b"from the source"


def test_destroyed_version_stays_destroyed_as_it_was(node: Node, tmp_path: Path) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="old"))
    svc.keys.rotate(ctx, "old")
    archive = tmp_path / "a.backup"
    shares = make_archive(node, archive)
    svc.keys.destroy_version(ctx, "old", 1)
    with svc.deps.reading() as conn:
        events = svc.deps.keys.events(conn, key.id)
    (destroyed,) = [v for v in _rows(node, schema.key_versions)
                    if v.key_id == key.id and v.version == 1]
    node.clock.advance(days=3)

    result = restore(node, archive, shares=shares[:2], force=True)
    assert result.kept_destroyed == [f"{key.id}:1"]
    (after,) = [v for v in _rows(node, schema.key_versions)
                if v.key_id == key.id and v.version == 1]
    assert after.state == destroyed.state and after.destroyed_at == destroyed.destroyed_at
    assert after.wrapped_material is None
    with svc.deps.reading() as conn:
        assert svc.deps.keys.events(conn, key.id) == events  # no event lost, none added


def test_restore_destroyed_is_recorded_with_who_and_which_approval(team: Team,
                                                                   tmp_path: Path) -> None:
    node, svc, root = team.node, team.svc, team.root()
    key = svc.keys.create(root, CreateKey(name="old"))
    golden = svc.crypto.encrypt(root, "old", b"under version one").ciphertext
    svc.keys.rotate(root, "old")
    archive = tmp_path / "a.backup"
    shares = make_archive(node, archive)
    svc.keys.destroy_version(root, "old", 1)

    requester = team.who("c1")
    with pytest.raises(ApprovalRequired) as filed:
        restore(node, archive, requester, shares=shares[:2], force=True,
                restore_destroyed=True)
    approval_id = filed.value.approval_id
    svc.approvals.approve(team.who("c2"), approval_id)
    svc.approvals.approve(team.who("c3"), approval_id)
    since = len(node.sink.records)
    result = restore(node, archive, requester, shares=shares[:2], force=True,
                     restore_destroyed=True, approval_id=approval_id)
    assert result.restored_destroyed == [f"{key.id}:1"]
    assert svc.crypto.decrypt(root, "old", golden)[0] == b"under version one"

    with svc.deps.reading() as conn:
        events = svc.deps.keys.events(conn, key.id)
    back = [e for e in events if e["action"] == "restore-version"]
    assert len(back) == 1 and back[0]["version"] == 1 and back[0]["principal"] == "c1"
    assert approval_id in (back[0]["reason"] or "")

    deadline = time.monotonic() + 5
    found: list[AuditRecord] = []
    while not found and time.monotonic() < deadline:
        found = [r for r in node.sink.records[since:] if isinstance(r, AuditRecord)
                 and r.operation == "backup.restore_destroyed"]
        time.sleep(0.02)
    (record,) = found
    assert record.principal == "c1" and record.approval_id == approval_id
    assert record.request_id and f"{key.id}:1" in (record.detail or "")


# -- trust in the archive's maker -----------------------------------------------------------

def test_foreign_signer_must_be_pinned(node: Node, target_factory: Any,
                                       tmp_path: Path) -> None:
    node.services.keys.create(node.ctx(), CreateKey(name="k1"))
    archive = tmp_path / "a.backup"
    shares = make_archive(node, archive)
    target = target_factory("sqlite")
    with pytest.raises(FailedPrecondition, match="pin its signer: --signer"):
        restore(target, archive, shares=shares[:2], signer=None)
    own = backups(target).signer.fingerprint()
    with pytest.raises(ArchiveInvalid, match="pinned signer"):
        restore(target, archive, shares=shares[:2], signer=own)
    assert _reason(target) is None  # nothing written
    source = backups(node).signer.fingerprint()
    assert restore(target, archive, shares=shares[:2], signer=source).counts["keys"] == 1
    # The instance's own archive needs no pin.
    assert restore(node, archive, shares=shares[:2], signer=None, force=True).forced
