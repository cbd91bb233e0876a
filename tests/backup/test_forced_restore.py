"""A forced restore into a non-empty instance is under dual control (``backup.restore``):
the first call files the approval (202); once approved, the requester runs that restore
of that archive with those options, once (issue 7 §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keykeeper.errors import ApprovalRequired, FailedPrecondition, PermissionDenied
from keykeeper.service.key_args import CreateKey
from tests.approvals.conftest import Team, team
from tests.backup.conftest import make_archive, restore

__all__ = ["team"]


def test_forced_restore_needs_approval_once(team: Team, tmp_path: Path) -> None:
    node, svc, root = team.node, team.svc, team.root()
    svc.keys.create(root, CreateKey(name="kept"))
    golden = svc.crypto.encrypt(root, "kept", b"before the accident").ciphertext
    archive, other = tmp_path / "a.backup", tmp_path / "b.backup"
    shares = make_archive(node, archive)
    other_shares = make_archive(node, other)
    svc.keys.rotate(root, "kept")  # the instance moves on: not empty

    requester = team.who("c1")
    with pytest.raises(FailedPrecondition, match="not empty"):
        restore(node, archive, requester, shares=shares[:2])
    with pytest.raises(ApprovalRequired) as filed:
        restore(node, archive, requester, shares=shares[:2], force=True)
    approval_id = filed.value.approval_id
    assert approval_id
    with pytest.raises(FailedPrecondition, match="pending, not approved"):
        restore(node, archive, requester, shares=shares[:2], force=True,
                approval_id=approval_id)
    svc.approvals.approve(team.who("c2"), approval_id)
    svc.approvals.approve(team.who("c3"), approval_id)

    with pytest.raises(PermissionDenied, match="another principal"):
        restore(node, archive, team.who("c2"), shares=shares[:2], force=True,
                approval_id=approval_id)
    with pytest.raises(FailedPrecondition, match="another archive or other options"):
        restore(node, other, requester, shares=other_shares[:2], force=True,
                approval_id=approval_id)
    with pytest.raises(FailedPrecondition, match="another archive or other options"):
        restore(node, archive, requester, shares=shares[:2], force=True,
                restore_destroyed=True, approval_id=approval_id)
    assert svc.keys.get(root, "kept").primary_version == 2  # nothing written yet

    result = restore(node, archive, requester, shares=shares[:2], force=True,
                     approval_id=approval_id)
    assert result.forced and result.counts["keys"] == 1
    # Key data only, and nothing deleted: the key keeps its newer version 2.
    assert result.added == {} and not result.identity_restored
    assert result.kept == {"namespaces": 1, "keys": 1, "key_versions": 1}
    assert svc.keys.get(root, "kept").primary_version == 2
    assert svc.crypto.decrypt(root, "kept", golden)[0] == b"before the accident"
    with pytest.raises(FailedPrecondition, match="used already"):
        restore(node, archive, requester, shares=shares[:2], force=True,
                approval_id=approval_id)
