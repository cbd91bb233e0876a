"""Encrypted backup archives: the format, the custodians, verification (pure: the
standard library, pyca/cryptography, and custody/shamir.py; the CLI verifies offline).

docs/backup-format.md describes the format; service/backup*.py makes and restores
archives from a server's store.
"""

from keykeeper.backup.custodians import (
    CustodianPrivateKey,
    CustodianPublicKey,
    generate_custodian_key,
    load_private_keys,
    load_public_key,
)
from keykeeper.backup.errors import ArchiveInvalid, WrongBackupKey
from keykeeper.backup.format import ArchiveReader, ArchiveWriter, Header, Material, Record
from keykeeper.backup.keys import BackupKey, fingerprint, load_signer, new_backup_key
from keykeeper.backup.verify import Report, open_key, read_verified, verify_archive

__all__ = [
    "ArchiveInvalid",
    "ArchiveReader",
    "ArchiveWriter",
    "BackupKey",
    "CustodianPrivateKey",
    "CustodianPublicKey",
    "Header",
    "Material",
    "Record",
    "Report",
    "WrongBackupKey",
    "fingerprint",
    "generate_custodian_key",
    "load_private_keys",
    "load_public_key",
    "load_signer",
    "new_backup_key",
    "open_key",
    "read_verified",
    "verify_archive",
]
