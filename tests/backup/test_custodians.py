"""Custodian public keys: RSA-4096 (OAEP) and the X25519 + ML-KEM-768 hybrid, a custodian
threshold, and a restore opened with the backup key a client recovered from custodian
private keys (which never reach the server), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from keykeeper.backup import (
    ArchiveReader,
    WrongBackupKey,
    generate_custodian_key,
    load_private_keys,
    open_key,
    verify_archive,
)
from keykeeper.errors import FailedPrecondition, InvalidArgument
from keykeeper.service.key_args import CreateKey
from tests.backup.conftest import backups, make_archive, restore
from tests.integration.conftest import Node


def _golden(n: Node) -> tuple[str, str]:
    svc, ctx = n.services, n.ctx()
    key = svc.keys.create(ctx, CreateKey(name="vault"))
    return key.id, svc.crypto.encrypt(ctx, "vault", b"golden custodian").ciphertext


def _backup_key(path: Path, private_pems: list[bytes]) -> bytes:
    with path.open("rb") as f:
        header = ArchiveReader(f).header
    key = open_key(header, private_keys=[load_private_keys(p) for p in private_pems])
    assert key is not None
    return key.raw


@pytest.fixture(scope="module")
def hybrid_pairs() -> list[tuple[bytes, bytes]]:
    return [generate_custodian_key("hybrid") for _ in range(4)]


@pytest.fixture(scope="module")
def rsa_pairs() -> list[tuple[bytes, bytes]]:
    return [generate_custodian_key("rsa") for _ in range(2)]


def test_hybrid_custodians_two_of_three(node: Node, target_factory: Any, tmp_path: Path,
                                        hybrid_pairs: list[tuple[bytes, bytes]]) -> None:
    key_id, golden = _golden(node)
    archive = tmp_path / "hybrid.backup"
    three = hybrid_pairs[:3]
    shares = make_archive(node, archive, shares=None, threshold=None,
                          custodian_keys=[pub for _, pub in three], custodian_threshold=2)
    assert shares == []
    with archive.open("rb") as f:
        custody = ArchiveReader(f).header.custody
    assert custody["shares"] is None
    assert custody["custodians"]["threshold"] == 2
    assert {e["kind"] for e in custody["custodians"]["entries"]} == {
        "x25519-mlkem768-hkdf-sha256-aes256gcm"}

    def opener() -> Any:
        return archive.open("rb")

    # Any two custodians open it; one alone, or an outsider, does not.
    for pair in ((0, 1), (2, 0), (1, 2)):
        report = verify_archive(opener, private_keys=[load_private_keys(three[i][0])
                                                      for i in pair])
        assert report.opened and report.materials == 1
    with pytest.raises(WrongBackupKey, match="too few custodians: 1 given, 2 needed"):
        verify_archive(opener, private_keys=[load_private_keys(three[1][0])])
    with pytest.raises(WrongBackupKey, match="not a custodian of this archive"):
        verify_archive(opener, private_keys=[load_private_keys(three[0][0]),
                                             load_private_keys(hybrid_pairs[3][0])])
    with pytest.raises(WrongBackupKey, match="open it with custodian private keys"):
        verify_archive(opener, shares=["kkb1.x.y"])

    # A fresh instance restores it with the key recovered client-side; its signer is
    # another instance's, so the signer must be pinned.
    raw = _backup_key(archive, [three[2][0], three[0][0]])
    target = target_factory("sqlite")
    with pytest.raises(FailedPrecondition, match="pin its signer"):
        restore(target, archive, backup_key=raw, signer=None)
    pinned = backups(node).signer.fingerprint()
    result = restore(target, archive, backup_key=raw, signer=pinned)
    assert result.counts["keys"] == 1
    out, _ = target.services.crypto.decrypt(target.ctx(), key_id, golden)
    assert out == b"golden custodian"


def test_rsa_custodians_with_shares_and_threshold_one(
        node: Node, target_factory: Any, tmp_path: Path,
        rsa_pairs: list[tuple[bytes, bytes]]) -> None:
    """RSA-4096 OAEP custodians, each able to open it alone (threshold 1, asked for), and
    shares as well: either opens the archive, into either backend. The policy allows it
    (KEYKEEPER_BACKUP_MIN_QUORUM=1; the default 2 refuses it: tests/backup/test_quorum.py)."""
    backups(node).create.min_quorum = 1
    key_id, golden = _golden(node)
    archive = tmp_path / "rsa.backup"
    shares = make_archive(node, archive, custodian_keys=[pub for _, pub in rsa_pairs],
                          custodian_threshold=1)
    assert len(shares) == 3
    with archive.open("rb") as f:
        entries = ArchiveReader(f).header.custody["custodians"]["entries"]
    assert [e["kind"] for e in entries] == ["rsa-oaep-sha256"] * 2
    for priv, _ in rsa_pairs:
        report = verify_archive(lambda: archive.open("rb"),
                                private_keys=[load_private_keys(priv)])
        assert report.opened
    assert verify_archive(lambda: archive.open("rb"), shares=shares[1:]).opened
    raw = _backup_key(archive, [rsa_pairs[1][0]])
    target = target_factory("postgresql")
    result = restore(target, archive, backup_key=raw,
                     signer=backups(node).signer.fingerprint())
    assert result.counts["key_versions"] == 1
    assert target.services.crypto.decrypt(target.ctx(), key_id, golden)[0] == \
        b"golden custodian"


def test_custodian_key_refusals(node: Node, tmp_path: Path,
                                hybrid_pairs: list[tuple[bytes, bytes]]) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=3072).public_key()
    pem = small.public_bytes(serialization.Encoding.PEM,
                             serialization.PublicFormat.SubjectPublicKeyInfo)
    plan = backups(node).create.plan
    with pytest.raises(InvalidArgument, match="at least 4096 bits"):
        plan(node.ctx(), custodian_keys=[pem], custodian_threshold=1)
    with pytest.raises(InvalidArgument, match="opens the backup alone"):
        plan(node.ctx(), custodian_keys=[hybrid_pairs[0][1]])
    with pytest.raises(InvalidArgument, match=r"custodian threshold must be 1\.\.2"):
        plan(node.ctx(), custodian_keys=[p for _, p in hybrid_pairs[:2]],
             custodian_threshold=3)
    with pytest.raises(InvalidArgument, match="given twice"):
        plan(node.ctx(), custodian_keys=[hybrid_pairs[0][1]] * 2)
    with pytest.raises(InvalidArgument, match=r"not a public key|custodian key is one"):
        plan(node.ctx(), custodian_keys=[hybrid_pairs[0][0]], custodian_threshold=1)
    with pytest.raises(InvalidArgument, match="choose who can open"):
        plan(node.ctx())
