"""Every refusal of an archive: truncated, corrupted, re-ordered, wrong or too few shares,
altered and re-signed, a non-empty target; nothing is written when refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keykeeper.backup import ArchiveInvalid, WrongBackupKey, verify_archive
from keykeeper.backup.format import canonical
from keykeeper.errors import FailedPrecondition
from keykeeper.service.key_args import CreateKey
from keykeeper.store import schema
from tests.backup.conftest import make_archive, restore
from tests.integration.conftest import Node


@pytest.fixture
def archive(node: Node, tmp_path: Path) -> tuple[Path, list[str]]:
    ctx = node.ctx()
    node.services.keys.create(ctx, CreateKey(name="k1"))
    node.services.keys.create(ctx, CreateKey(name="k2"))
    path = tmp_path / "a.backup"
    return path, make_archive(node, path)


def _keys_in(n: Node) -> int:
    with n.services.deps.reading() as conn:
        return len(conn.execute(schema.keys.select()).all())


def _refused(target: Node, path: Path, shares: list[str], exc: type[Exception],
             match: str) -> None:
    with pytest.raises(exc, match=match):
        restore(target, path, shares=shares)
    assert _keys_in(target) == 0


def test_truncated(archive: Any, target_factory: Any, tmp_path: Path) -> None:
    path, shares = archive
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    cut = tmp_path / "cut.backup"
    cut.write_bytes(b"".join(lines[:-2]))  # no manifest
    with pytest.raises(ArchiveInvalid, match="truncated"):
        verify_archive(lambda: cut.open("rb"))
    cut.write_bytes(data[:-10])             # half a trailer
    _refused(target_factory("sqlite"), cut, shares[:2], ArchiveInvalid, "truncated")


def test_corrupted_and_reordered(archive: Any, target_factory: Any, tmp_path: Path) -> None:
    path, shares = archive
    lines = path.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.backup"
    flipped = lines[3].replace(b'"n":3', b'"n":3 ')  # still JSON, but altered bytes
    bad.write_bytes(b"".join([*lines[:3], flipped, *lines[4:]]))
    with pytest.raises(ArchiveInvalid, match="digest"):
        verify_archive(lambda: bad.open("rb"))
    bad.write_bytes(b"".join([lines[0], lines[2], lines[1], *lines[3:]]))
    with pytest.raises(ArchiveInvalid, match="out of order"):
        verify_archive(lambda: bad.open("rb"))
    bad.write_bytes(b"".join([*lines[:2], b"{not json\n", *lines[3:]]))
    _refused(target_factory("sqlite"), bad, shares[:2], ArchiveInvalid, "not valid JSON")


def test_wrong_and_too_few_shares(archive: Any, node: Node, target_factory: Any,
                                  tmp_path: Path) -> None:
    path, shares = archive
    other = tmp_path / "other.backup"
    other_shares = make_archive(node, other)
    target = target_factory("sqlite")
    _refused(target, path, shares[:1], WrongBackupKey, "too few shares")
    _refused(target, path, [shares[0], other_shares[1]], WrongBackupKey, "another backup|"
             "belongs to backup")
    typo = shares[1][:-3] + ("A" if shares[1][-3] != "A" else "B") + shares[1][-2:]
    _refused(target, path, [shares[0], typo], WrongBackupKey, "checksum|base64")


def test_altered_and_resigned(archive: Any, node: Node, target_factory: Any,
                              tmp_path: Path) -> None:
    """Someone changes a record, recomputes every digest and re-signs with their own key:
    the pinned signer refuses it, and so does the backup key's MAC."""
    path, shares = archive
    lines = path.read_bytes().splitlines(keepends=True)
    header = json.loads(lines[0])
    forger = Ed25519PrivateKey.generate()
    header["signer"]["public_key"] = base64.b64encode(
        forger.public_key().public_bytes_raw()).decode()
    records = [json.loads(x) for x in lines[1:-2]]
    for r in records:
        if r["t"] == "keys":
            r["r"]["description"] = "forged"
    import hashlib
    new_lines = [canonical(header) + b"\n"] + [canonical(r) + b"\n" for r in records]
    stream = hashlib.sha256()
    tables: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for line, r in zip(new_lines[1:], records, strict=True):
        tables.setdefault(r["t"], hashlib.sha256()).update(line)
        counts[r["t"]] = counts.get(r["t"], 0) + 1
    for line in new_lines:
        stream.update(line)
    names = [t["name"] for t in header["tables"]]
    manifest = canonical({"manifest": {
        "records": len(records), "counts": {t: counts.get(t, 0) for t in names},
        "digests": {t: (tables[t] if t in tables else hashlib.sha256()).hexdigest()
                    for t in names},
        "stream_sha256": stream.hexdigest()}})
    old_trailer = json.loads(lines[-1])
    trailer = canonical({"signature": base64.b64encode(forger.sign(manifest)).decode(),
                         "mac": old_trailer["mac"]})
    forged = tmp_path / "forged.backup"
    forged.write_bytes(b"".join(new_lines) + manifest + b"\n" + trailer + b"\n")
    verify_archive(lambda: forged.open("rb"))  # structurally sound, self-consistent
    pinned = node.services.backups.signer.fingerprint()  # type: ignore[union-attr]
    with pytest.raises(ArchiveInvalid, match="not by the pinned signer"):
        verify_archive(lambda: forged.open("rb"), signer=pinned)
    with pytest.raises(ArchiveInvalid, match="re-signed"):
        verify_archive(lambda: forged.open("rb"), shares=shares[:2])
    _refused(target_factory("sqlite"), forged, shares[:2], ArchiveInvalid, "re-signed")


def test_non_empty_target_refused(archive: Any, node: Node) -> None:
    path, shares = archive
    with pytest.raises(FailedPrecondition, match="not empty"):
        restore(node, path, shares=shares[:2])
