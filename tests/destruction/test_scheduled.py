"""Scheduled destruction: crypto-erasure of every version, a tombstone, a signed receipt,
per-key failure isolation, and no erased blob left in the SQLite file or its WAL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text

from keykeeper.client.receipts import verify_receipt
from keykeeper.errors import FailedPrecondition
from keykeeper.service.keys import CreateKey
from tests.integration.conftest import Node


def _blobs(node: Node, key_id: str, versions: range) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    with node.services.deps.reading() as conn:
        for v in versions:
            blob = node.services.deps.keys.wrapped_material(conn, key_id, v)
            assert blob is not None
            out[v] = blob
    return out


def _files(db: Path) -> list[Path]:
    found = [p for p in (db, Path(str(db) + "-wal")) if p.exists()]
    assert found
    return found


def test_due_key_is_erased_with_a_signed_receipt(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="doomed"))
    svc.keys.rotate(ctx, "doomed")
    blobs = _blobs(node, key.id, range(1, 3))
    svc.keys.schedule_destruction(ctx, "doomed", 7)
    node.clock.advance(days=6, hours=23)
    assert svc.destruction.destroy_due(node.clock()) == (0, 0)
    node.clock.advance(hours=2)
    assert svc.destruction.destroy_due(node.clock()) == (1, 0)
    assert svc.destruction.destroy_due(node.clock()) == (0, 0)   # idempotent

    gone = svc.keys.get(ctx, "doomed")
    assert gone.state == "destroyed" and gone.name == "doomed"    # tombstone kept
    assert {v.state for v in gone.versions} == {"destroyed"}
    with svc.deps.reading() as conn:
        assert all(svc.deps.keys.wrapped_material(conn, key.id, v) is None for v in (1, 2))
        events = [e["action"] for e in svc.deps.keys.events(conn, key.id)]
    assert events[-1] == "destroy"

    (receipt,) = svc.destruction.receipts(ctx, "doomed")
    checked = verify_receipt(receipt, svc.destruction.public_key_pem())
    assert checked.key_id == key.id and checked.versions == (1, 2)
    assert receipt["scope"] == "key" and receipt["remaining_wrapped_copies"] == 0
    assert receipt["requested_by"] == "root" and receipt["destroyed_by"] == "scheduler"
    assert {v["version"]: v["wrapped_sha256"] for v in receipt["versions"]} == {
        v: hashlib.sha256(b).hexdigest() for v, b in blobs.items()}
    assert receipt["namespace"] == "default" and receipt["algorithm"] == key.algorithm


def test_version_destroy_issues_a_receipt_and_key_destruction_covers_the_rest(
        node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="partial"))
    svc.keys.rotate(ctx, "partial")
    blob1 = _blobs(node, key.id, range(1, 2))[1]
    with pytest.raises(FailedPrecondition):
        svc.keys.destroy_version(ctx, "partial", 2)    # the primary version
    assert svc.keys.destroy_version(ctx, "partial", 1).state == "destroyed"
    (first,) = svc.destruction.receipts(ctx, "partial")
    assert first["scope"] == "version" and first["destroyed_by"] == "root"
    assert first["versions"] == [{"version": 1, "state": "destroyed",
                                  "destroyed_at": first["time"],
                                  "wrapped_sha256": hashlib.sha256(blob1).hexdigest()}]
    svc.keys.schedule_destruction(ctx, "partial", 7)
    node.clock.advance(days=8)
    assert svc.keys.destroy_due() == 1          # the old entry point still works
    first_again, second = svc.destruction.receipts(ctx, "partial")
    assert first_again == first
    pub = svc.destruction.public_key_pem()
    verify_receipt(first, pub)
    verify_receipt(second, pub)
    by_version = {v["version"]: v for v in second["versions"]}
    assert by_version[1]["wrapped_sha256"] is None          # erased before, by receipt 1
    assert by_version[1]["destroyed_at"] == first["time"]
    assert by_version[2]["wrapped_sha256"] is not None


def test_compromised_key_ends_destroyed_compromised(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="leaked"))
    svc.keys.compromise(ctx, "leaked", "found on a paste site")
    svc.keys.schedule_destruction(ctx, "leaked", 7)
    node.clock.advance(days=8)
    assert svc.destruction.destroy_due(node.clock()) == (1, 0)
    (receipt,) = svc.destruction.receipts(ctx, "leaked")
    assert receipt["versions"][0]["state"] == "destroyed-compromised"


def test_one_failing_key_does_not_stop_the_others(node: Node) -> None:
    """A database trigger refuses the erasure of one key's versions (a real failure of
    the store): that key fails and stays pending, the other is destroyed."""
    svc, ctx = node.services, node.ctx()
    bad = svc.keys.create(ctx, CreateKey(name="stuck"))
    svc.keys.create(ctx, CreateKey(name="fine"))
    for name in ("stuck", "fine"):
        svc.keys.schedule_destruction(ctx, name, 7)
    engine = svc.deps.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(
                "CREATE TRIGGER refuse_erasure BEFORE UPDATE ON key_versions "
                f"WHEN OLD.key_id = '{bad.id}' BEGIN SELECT RAISE(ABORT, 'refused'); END"))
        else:
            conn.execute(text(
                "CREATE FUNCTION refuse_erasure() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"))
            conn.execute(text(
                "CREATE TRIGGER refuse_erasure BEFORE UPDATE ON key_versions FOR EACH ROW "
                f"WHEN (OLD.key_id = '{bad.id}') EXECUTE FUNCTION refuse_erasure()"))
    node.clock.advance(days=8)
    assert svc.destruction.destroy_due(node.clock()) == (1, 1)
    assert svc.keys.get(ctx, "fine").state == "destroyed"
    stuck = svc.keys.get(ctx, "stuck")
    assert stuck.state == "pending-destruction"
    assert svc.destruction.receipts(ctx, "stuck") == []
    with svc.deps.reading() as conn:
        assert svc.deps.keys.wrapped_material(conn, bad.id, 1) is not None


def test_sealed_destroys_nothing(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="later"))
    svc.keys.schedule_destruction(ctx, "later", 7)
    node.clock.advance(days=8)
    svc.system.seal()
    assert svc.destruction.destroy_due(node.clock()) == (0, 0)


def test_erased_blobs_are_nowhere_in_the_store(node: Node, sqlite_path: Path | None) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="scan-me"))
    svc.keys.rotate(ctx, "scan-me")
    blobs = list(_blobs(node, key.id, range(1, 3)).values())
    if sqlite_path is not None:   # the scan can see them: they are there before
        before = b"".join(p.read_bytes() for p in _files(sqlite_path))
        assert all(blob in before for blob in blobs)
    svc.keys.schedule_destruction(ctx, "scan-me", 7)
    node.clock.advance(days=7, seconds=1)
    assert svc.destruction.destroy_due(node.clock()) == (1, 0)
    if sqlite_path is not None:
        for path in _files(sqlite_path):
            data = path.read_bytes()
            for blob in blobs:
                assert blob not in data, path.name
                assert blob[:32] not in data, path.name   # not even a fragment
    else:
        with svc.deps.reading() as conn:
            for blob in blobs:
                n = conn.execute(text("SELECT count(*) FROM key_versions "
                                      "WHERE wrapped_material = :b"), {"b": blob}).scalar()
                assert n == 0
            left = conn.execute(text("SELECT count(*) FROM key_versions WHERE key_id = :k "
                                     "AND wrapped_material IS NOT NULL"),
                                {"k": key.id}).scalar()
            assert left == 0
