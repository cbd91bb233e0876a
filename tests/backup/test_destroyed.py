"""Destroyed stays destroyed (issue 7 §2): a backup taken after destruction holds no
material for it; an older backup restored later does not bring a destroyed version back
unless the restore is forced with restore_destroyed, and then it is audited."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from keykeeper.audit.records import AuditRecord
from keykeeper.backup import verify_archive
from keykeeper.errors import DecryptionFailed, FailedPrecondition, InvalidArgument
from keykeeper.service.key_args import CreateKey
from tests.backup.conftest import make_archive, restore
from tests.integration.conftest import Node


def _two_versions(n: Node) -> tuple[str, str, str]:
    """Key 'old' with versions 1 and 2 and a golden ciphertext under each."""
    svc, ctx = n.services, n.ctx()
    key = svc.keys.create(ctx, CreateKey(name="old"))
    first = svc.crypto.encrypt(ctx, "old", b"under version one").ciphertext
    svc.keys.rotate(ctx, "old")
    second = svc.crypto.encrypt(ctx, "old", b"under version two").ciphertext
    return key.id, first, second


def _version_records(path: Path, key_id: str) -> dict[int, dict[str, object]]:
    out = {}
    for line in path.read_bytes().splitlines():
        obj = json.loads(line)
        if obj.get("t") == "key_versions" and obj["r"]["key_id"] == key_id:
            out[int(obj["r"]["version"])] = obj["r"]
    return out


def _notes(n: Node, since: int, *, wait: bool) -> list[AuditRecord]:
    """The ``backup.restore_destroyed`` records written after record ``since`` (a note is
    handed to the sink's writer thread, not waited for: poll up to 5 s when expected)."""
    deadline = time.monotonic() + (5 if wait else 0.5)
    while True:
        found = [r for r in n.sink.records[since:] if isinstance(r, AuditRecord)
                 and r.operation == "backup.restore_destroyed"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _refused(n: Node, ref: str, ciphertext: str) -> None:
    with pytest.raises((DecryptionFailed, FailedPrecondition)):
        n.services.crypto.decrypt(n.ctx(), ref, ciphertext)


def test_backup_after_destruction_holds_no_material(node: Node, tmp_path: Path) -> None:
    key_id, _, _ = _two_versions(node)
    node.services.keys.destroy_version(node.ctx(), "old", 1)
    archive = tmp_path / "after.backup"
    shares = make_archive(node, archive)
    records = _version_records(archive, key_id)
    assert records[1]["wrapped_material"] is None
    assert records[1]["state"] == "destroyed"
    assert isinstance(records[2]["wrapped_material"], dict)
    report = verify_archive(lambda: archive.open("rb"), shares=shares[:2])
    assert report.opened and report.materials == 1


@pytest.mark.parametrize("bring_back", [False, True])
def test_older_backup_restored_after_destruction(node: Node, tmp_path: Path,
                                                 bring_back: bool) -> None:
    key_id, first, second = _two_versions(node)
    archive = tmp_path / "before.backup"
    shares = make_archive(node, archive)  # version 1 still has its material here
    assert isinstance(_version_records(archive, key_id)[1]["wrapped_material"], dict)
    node.services.keys.destroy_version(node.ctx(), "old", 1)
    _refused(node, "old", first)

    with pytest.raises(FailedPrecondition, match="not empty"):
        restore(node, archive, shares=shares[:2])
    with pytest.raises(InvalidArgument, match="restore_destroyed needs force"):
        restore(node, archive, shares=shares[:2], restore_destroyed=True)
    before = len(node.sink.records)
    result = restore(node, archive, shares=shares[:2], force=True,
                     restore_destroyed=bring_back)
    assert result.forced
    notes = _notes(node, before, wait=bring_back)
    versions = {v.version: v for v in node.services.keys.get(node.ctx(), "old").versions}
    if bring_back:
        assert result.restored_destroyed == [f"{key_id}:1"] and not result.kept_destroyed
        assert node.services.crypto.decrypt(node.ctx(), "old", first)[0] == b"under version one"
        assert str(versions[1].state) != "destroyed"
        assert len(notes) == 1 and f"{key_id}:1" in (notes[0].detail or "")
        assert notes[0].reason == "forced"
    else:
        assert result.kept_destroyed == [f"{key_id}:1"] and not result.restored_destroyed
        _refused(node, "old", first)
        assert str(versions[1].state) == "destroyed"
        assert notes == []
    assert node.services.crypto.decrypt(node.ctx(), "old", second)[0] == b"under version two"
