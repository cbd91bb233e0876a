"""Per-key backup (``plan(keys=[...])``): the archive holds the chosen keys with their
versions, labels and events, and their namespaces only; it restores into a fresh instance
on either backend, where the chosen keys decrypt their golden ciphertexts and the others
do not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keykeeper.backup import ArchiveReader, verify_archive
from keykeeper.errors import NotFound
from keykeeper.service.key_args import CreateKey
from tests.backup.conftest import make_archive, restore
from tests.integration.conftest import Node


@pytest.mark.parametrize("to", ["sqlite", "postgresql"])
def test_selected_keys_only(node: Node, target_factory: Any, tmp_path: Path, to: str) -> None:
    svc, ctx = node.services, node.ctx()
    svc.namespaces.create(ctx, "payments")
    svc.namespaces.create(ctx, "elsewhere")
    chosen = svc.keys.create(ctx, CreateKey(name="cards", namespace="payments",
                                            labels={"pci": "yes"}))
    svc.keys.rotate(ctx, "payments:cards")
    golden = svc.crypto.encrypt(ctx, "payments:cards", b"only this one").ciphertext
    also = svc.keys.create(ctx, CreateKey(name="orders"))
    golden2 = svc.crypto.encrypt(ctx, also.id, b"and this one").ciphertext
    left = svc.keys.create(ctx, CreateKey(name="left-out", namespace="elsewhere"))

    archive = tmp_path / "keys.backup"
    shares = make_archive(node, archive, keys=["payments:cards", also.id])
    with archive.open("rb") as f:
        header = ArchiveReader(f).header
    assert header.raw["scope"] == {"kind": "keys", "keys": sorted([chosen.id, also.id])}
    report = verify_archive(lambda: archive.open("rb"), shares=shares[:2])
    assert report.counts["keys"] == 2 and report.counts["key_versions"] == 3
    assert report.counts["key_labels"] == 1
    assert report.materials == 3
    text = archive.read_bytes()
    assert left.id.encode() not in text and b"elsewhere" not in text

    target = target_factory(to)
    result = restore(target, archive, shares=shares[1:])
    assert result.counts["keys"] == 2
    t, tctx = target.services, target.ctx()
    assert t.crypto.decrypt(tctx, "payments:cards", golden)[0] == b"only this one"
    assert t.crypto.decrypt(tctx, "orders", golden2)[0] == b"and this one"
    restored = t.keys.get(tctx, "payments:cards")
    assert restored.id == chosen.id and restored.primary_version == 2
    assert dict(restored.labels) == {"pci": "yes"}
    with pytest.raises(NotFound):
        t.keys.get(tctx, left.id)
    assert t.namespaces.get(tctx, "payments").name == "payments"
    with pytest.raises(NotFound):
        t.namespaces.get(tctx, "elsewhere")


def test_unknown_selected_key(node: Node) -> None:
    plan = node.services.backups.create.plan  # type: ignore[union-attr]
    with pytest.raises(NotFound, match="'nope' not found"):
        plan(node.ctx(), shares=3, keys=["nope"])
