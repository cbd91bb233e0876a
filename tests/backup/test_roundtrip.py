"""Backup create -> verify -> restore, in process, across SQLite and PostgreSQL in both
directions, with golden ciphertexts made before the backup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keykeeper.backup import ArchiveReader, verify_archive
from keykeeper.service.key_args import CreateKey
from tests.backup.conftest import make_archive, restore
from tests.integration.conftest import Node


def populate(n: Node) -> dict[str, Any]:
    """Keys of several kinds and states, and golden ciphertexts / signatures."""
    svc, ctx = n.services, n.ctx()
    svc.namespaces.create(ctx, "payments", description="cards")
    enc = svc.keys.create(ctx, CreateKey(name="orders", labels={"team": "a"}))
    first = svc.crypto.encrypt(ctx, "orders", b"golden one", {"o": "1"}).ciphertext
    svc.keys.rotate(ctx, "orders")
    second = svc.crypto.encrypt(ctx, "orders", b"golden two").ciphertext
    pay = svc.keys.create(ctx, CreateKey(name="cards", namespace="payments"))
    third = svc.crypto.encrypt(ctx, "payments:cards", b"golden three").ciphertext
    sig = svc.keys.create(ctx, CreateKey(name="signer", purpose="sign",
                                         algorithm="ED25519"))
    signed, _ = svc.crypto.sign(ctx, "signer", b"message", prehashed=False,
                                signature_format=None)
    svc.keys.disable(ctx, "payments:cards")
    return {"enc": enc.id, "pay": pay.id, "sig": sig.id, "first": first, "second": second,
            "third": third, "signature": signed}


def check_restored(n: Node, g: dict[str, Any]) -> None:
    svc, ctx = n.services, n.ctx()
    assert svc.crypto.decrypt(ctx, g["enc"], g["first"], {"o": "1"})[0] == b"golden one"
    assert svc.crypto.decrypt(ctx, "orders", g["second"])[0] == b"golden two"
    orders = svc.keys.get(ctx, "orders")
    assert orders.id == g["enc"] and orders.primary_version == 2
    assert dict(orders.labels) == {"team": "a"}
    cards = svc.keys.get(ctx, "payments:cards")
    assert str(cards.state) == "suspended"
    svc.keys.enable(ctx, "payments:cards")
    assert svc.crypto.decrypt(ctx, "payments:cards", g["third"])[0] == b"golden three"


@pytest.mark.parametrize("to", ["sqlite", "postgresql"])
def test_restore_across_backends(node: Node, target_factory: Any, tmp_path: Path,
                                 to: str) -> None:
    golden = populate(node)
    archive = tmp_path / "kk.backup"
    shares = make_archive(node, archive)
    assert len(shares) == 3
    report = verify_archive(lambda: archive.open("rb"), shares=shares[:2])
    assert report.opened and report.materials >= 4
    target = target_factory(to)
    result = restore(target, archive, shares=[shares[2], shares[0]])
    assert result.counts["keys"] == 3
    check_restored(target, golden)
    ok, _ = target.services.crypto.verify(target.ctx(), "signer", b"message",
                                          golden["signature"], prehashed=False,
                                          signature_format=None)
    assert ok


def test_archive_holds_no_key_bytes(node: Node, tmp_path: Path) -> None:
    populate(node)
    archive = tmp_path / "kk.backup"
    make_archive(node, archive)
    data = archive.read_bytes()
    deps = node.services.deps
    import base64

    from sqlalchemy import select

    from keykeeper.custody.keyring import WrappedVersion
    from keykeeper.store.schema import key_versions, keys, namespaces
    with deps.reading() as conn:
        rows = conn.execute(select(key_versions.c.key_id, key_versions.c.version,
                                   key_versions.c.wrapped_material, keys.c.namespace,
                                   keys.c.algorithm, namespaces.c.wrapped_kek)
                            .join(keys, keys.c.id == key_versions.c.key_id)
                            .join(namespaces, namespaces.c.name == keys.c.namespace)).all()
    found = 0
    for r in rows:
        if r.wrapped_material is None:
            continue
        material = deps.custody.unwrap_material(
            WrappedVersion(r.namespace, r.wrapped_kek, r.algorithm, r.wrapped_material),
            r.key_id, r.version)
        found += 1
        for form in (material, base64.b64encode(material), material.hex().encode(),
                     bytes(r.wrapped_material), base64.b64encode(r.wrapped_material)):
            assert form not in data
        # no 16-byte window of the material either
        for i in range(0, len(material) - 16, 8):
            assert material[i:i + 16] not in data
    assert found >= 4
    with archive.open("rb") as f:
        reader = ArchiveReader(f)
        assert reader.header.backup_id.startswith("bk-")
