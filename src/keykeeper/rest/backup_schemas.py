"""msgspec structs of the backup routes (issue 7; docs/backup-format.md).

``POST /v1/sys/backup`` takes :class:`BackupRequest` and answers ``application/x-ndjson``:
one :class:`BackupStarted` line, then the archive. ``POST /v1/sys/restore`` takes one
:class:`RestoreRequest` line, then the archive, and answers :class:`RestoreResponse`.
Shares are the archive's ``kkb1.`` texts; ``backup_key`` is standard base64 (32 bytes,
recovered by a client from custodian private keys: they never leave the custodian)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

Pem = Annotated[str, Meta(max_length=16384)]
Share = Annotated[str, Meta(max_length=256)]
KeyRef = Annotated[str, Meta(min_length=1, max_length=300)]


class BackupRequest(Struct, forbid_unknown_fields=True):
    shares: Annotated[int, Meta(ge=1, le=255)] | None = None           # N
    threshold: Annotated[int, Meta(ge=1, le=255)] | None = None        # M of the shares
    custodian_keys: Annotated[list[Pem], Meta(max_length=32)] = []     # public keys, PEM
    custodian_threshold: Annotated[int, Meta(ge=1, le=32)] | None = None
    keys: Annotated[list[KeyRef], Meta(min_length=1, max_length=10000)] | None = None


class BackupStarted(Struct):
    """The first line of the backup answer; the archive follows it."""

    backup_id: str
    signer: str                  # fingerprint of the signing key: sha256:<hex>
    scope: str                   # full | keys
    shares: list[str] = []       # shown once, never stored
    custodians: int = 0
    custodian_threshold: int | None = None
    threshold: int | None = None  # shares needed to open the archive (with shares)


class RestoreRequest(Struct, forbid_unknown_fields=True):
    shares: Annotated[list[Share], Meta(max_length=255)] = []
    backup_key: Annotated[str, Meta(max_length=64)] | None = None
    signer: Annotated[str, Meta(max_length=1024)] | None = None        # fingerprint or PEM
    force: bool = False
    restore_destroyed: bool = False
    approval_id: Annotated[str, Meta(max_length=128)] | None = None


class RestoreResponse(Struct):
    backup_id: str
    counts: dict[str, int]
    forced: bool
    archive_sha256: str
    kept_destroyed: list[str] = []
    restored_destroyed: list[str] = []
    added: dict[str, int] = {}           # rows written new, per table
    kept: dict[str, int] = {}            # this instance's rows kept (forced restore)
    skipped: dict[str, int] = {}         # identity and policy rows not restored
    conflicts: list[str] = []            # keys left out: namespace:name taken here
    identity_restored: bool = True       # False: forced into a non-empty instance


class SigningKey(Struct):
    public_key: str              # PEM (SubjectPublicKeyInfo, Ed25519)
    fingerprint: str             # sha256:<hex of the raw public key>
