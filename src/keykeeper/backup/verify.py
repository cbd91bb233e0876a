"""Verify an archive, with or without custodians, writing nothing (docs/backup-format.md,
Verification).

Without custodians: the structure, the record order, the manifest's counts and digests
and the Ed25519 signature over the manifest (against the archive's own signer, or the
pinned one). With shares or custodian private keys (or the recovered backup key): also
the key check, the HMAC of the manifest under the backup key, and that every wrapped
material opens -- the material is dropped at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO

from keykeeper.backup.custodians import CustodianPrivateKey, recover
from keykeeper.backup.errors import ArchiveInvalid, WrongBackupKey
from keykeeper.backup.format import ArchiveReader, Header, Material, Record
from keykeeper.backup.keys import BackupKey, fingerprint, verify_signature

__all__ = ["Report", "open_key", "read_verified", "verify_archive"]

MATERIAL_TABLE = "key_versions"
MATERIAL_COLUMN = "wrapped_material"


@dataclass
class Report:
    """What a verification found. ``opened``: the backup key was given and every wrapped
    material opened; ``materials``: how many versions carry material."""

    backup_id: str
    created_at: str
    signer: str
    records: int
    counts: dict[str, int]
    materials: int = 0
    opened: bool = False
    custody: dict[str, object] = field(default_factory=dict)


def open_key(header: Header, *, shares: Sequence[str] = (),
             private_keys: Sequence[CustodianPrivateKey] = (),
             backup_key: bytes | None = None) -> BackupKey | None:
    """The archive's backup key from what was given (None if nothing was), checked against
    the header's key check. WrongBackupKey if it does not match."""
    if backup_key is None and not shares and not private_keys:
        return None
    raw = backup_key if backup_key is not None else recover(
        header.custody, header.backup_id, shares=shares, private_keys=private_keys)
    key = BackupKey(raw, header.backup_id) if len(raw) == 32 else None
    if key is None or not key.matches(header.key_check):
        raise WrongBackupKey("the shares or custodian keys given do not open this archive "
                             "(a wrong share, or fewer than the threshold)")
    return key


def _check_signer(header: Header, signer: str | None) -> str:
    actual = fingerprint(header.signer_public)
    if signer is not None and signer != actual:
        raise ArchiveInvalid(f"the archive is signed by {actual}, not by the pinned signer "
                             f"{signer}")
    return actual


def read_verified(stream: IO[bytes], *, key: BackupKey | None, signer: str | None,
                  on_record: Callable[[Record, bytes | None], None] | None = None,
                  header: Header | None = None) -> Report:
    """Read the whole archive, calling ``on_record(record, material)`` for each record
    (``material``: the opened material of a version when ``key`` is given, else None),
    then check the manifest, the signature (pinned to ``signer``, a fingerprint, when
    given) and, with ``key``, the manifest MAC. ArchiveInvalid / WrongBackupKey on any
    failure: a caller that writes must do so in a transaction it rolls back then."""
    reader = ArchiveReader(stream)
    hdr = reader.header
    if header is not None and hdr.raw != header.raw:
        raise ArchiveInvalid("the archive changed while it was read")
    actual = _check_signer(hdr, signer)
    if key is not None and not key.matches(hdr.key_check):
        raise WrongBackupKey("the backup key does not open this archive")
    materials = 0
    for record in reader.records():
        material = None
        if record.table == MATERIAL_TABLE:
            wrapped = record.row.get(MATERIAL_COLUMN)
            if wrapped is not None:
                if not isinstance(wrapped, Material):
                    raise ArchiveInvalid(f"record {record.n} holds malformed material")
                materials += 1
                if key is not None:
                    material = key.unwrap(wrapped.wrapped, namespace=wrapped.namespace,
                                          key_id=str(record.row.get("key_id")),
                                          version=int(record.row.get("version") or 0),
                                          algorithm=wrapped.algorithm)
        if on_record is not None:
            on_record(record, material)
    if not verify_signature(hdr.signer_public, reader.signature, reader.manifest_line):
        raise ArchiveInvalid("the manifest's signature does not verify (altered)")
    if key is not None and not key.verify_mac(reader.manifest_line, reader.mac):
        raise ArchiveInvalid("the manifest is not authenticated by the backup key: the "
                             "archive was altered and re-signed")
    return Report(backup_id=hdr.backup_id, created_at=hdr.created_at, signer=actual,
                  records=reader.records_read, counts=dict(reader.manifest.get("counts", {})),
                  materials=materials, opened=key is not None,
                  custody=_custody_summary(hdr))


def _custody_summary(header: Header) -> dict[str, object]:
    out: dict[str, object] = {}
    shares = header.custody.get("shares")
    if isinstance(shares, dict):
        out["shares"] = {"count": shares.get("count"), "threshold": shares.get("threshold")}
    custodians = header.custody.get("custodians")
    if isinstance(custodians, dict):
        if not isinstance(custodians.get("entries", []), list):
            raise ArchiveInvalid("the archive's custodian entries are malformed")
        out["custodians"] = {
            "threshold": custodians.get("threshold"),
            "keys": [{"kind": e.get("kind"), "fingerprint": e.get("fingerprint")}
                     for e in custodians.get("entries", []) if isinstance(e, dict)]}
    return out


def verify_archive(open_stream: Callable[[], IO[bytes]], *, shares: Sequence[str] = (),
                   private_keys: Sequence[CustodianPrivateKey] = (),
                   backup_key: bytes | None = None, signer: str | None = None) -> Report:
    """Verify the archive ``open_stream()`` returns (it is opened once, closed after).
    ``signer``: a fingerprint (keys.load_signer) the signature must be made by."""
    with open_stream() as stream:
        header = ArchiveReader(stream).header
    key = open_key(header, shares=shares, private_keys=private_keys, backup_key=backup_key)
    with open_stream() as stream:
        return read_verified(stream, key=key, signer=signer, header=header)


