"""Backup routes of the SDK (``/v1/sys/backup``, ``/v1/sys/restore``,
``/v1/sys/backup/signing-key``; docs/backup-format.md).

Archives move in constant memory both ways. :meth:`BackupMixin.backup_create` checks the
archive as it arrives (structure, order, manifest, digests and the signature, with the
pure reader of keykeeper.backup): an archive broken off part-way raises and, written to a
path, is never put in place. :meth:`BackupMixin.backup_restore` recovers the backup key
locally from custodian private keys, so they never leave the custodian; shares are sent
to the server, which combines them.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
import msgspec

from keykeeper.backup import ArchiveReader, load_private_keys, load_signer, open_key
from keykeeper.backup.files import write_atomically
from keykeeper.backup.verify import read_verified
from keykeeper.client._http import Http
from keykeeper.errors import Internal, InvalidArgument, Unavailable

__all__ = ["BackupCreated", "BackupMixin", "BackupRestored", "BackupSigningKey"]

CHUNK = 64 * 1024  # bytes per upload chunk
MAX_FIRST_LINE = 1 << 20
ARCHIVE_TYPE = "application/x-ndjson"

PathOrFile = str | os.PathLike[str] | IO[bytes]


class BackupCreated(msgspec.Struct, frozen=True, kw_only=True):
    """A backup made and checked: ``shares`` are shown once (give one to each custodian);
    ``signer`` is the archive's signing-key fingerprint; ``records`` and ``counts`` come
    from the verified manifest."""

    backup_id: str
    signer: str
    scope: str
    shares: list[str] = []
    custodians: int = 0
    custodian_threshold: int | None = None
    records: int = 0
    counts: dict[str, int] = {}
    threshold: int | None = None  # shares needed to open it (when split into shares)


class BackupRestored(msgspec.Struct, frozen=True, kw_only=True):
    """A restore done: ``counts`` (records the archive held, per table), whether it was
    forced, ``added`` (rows written new, per table), ``kept`` (this instance's rows kept
    over the archive's: a forced restore deletes nothing), the versions this instance knew
    as destroyed that stayed destroyed (``key_id:version``) or were brought back (forced,
    audited), ``skipped`` identity and policy rows (not restored into a non-empty
    instance), ``conflicts`` (keys left out: their ``namespace:name`` is taken here) and
    ``identity_restored``."""

    backup_id: str
    counts: dict[str, int]
    forced: bool
    archive_sha256: str
    kept_destroyed: list[str] = []
    restored_destroyed: list[str] = []
    added: dict[str, int] = {}
    kept: dict[str, int] = {}
    skipped: dict[str, int] = {}
    conflicts: list[str] = []
    identity_restored: bool = True


class BackupSigningKey(msgspec.Struct, frozen=True, kw_only=True):
    public_key: str   # PEM
    fingerprint: str  # sha256:<hex>


class _Started(msgspec.Struct):
    backup_id: str
    signer: str
    scope: str
    shares: list[str] = []
    custodians: int = 0
    custodian_threshold: int | None = None
    threshold: int | None = None


class _Tee:
    """A readable binary stream over the answer's chunks that copies every byte read
    to ``out`` (once set), for the archive reader: ``readline`` and ``read``."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self.out: IO[bytes] | None = None

    def _fill(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._buf = self._buf[self._pos:] + chunk
                self._pos = 0
                return True
        return False

    def _take(self, end: int) -> bytes:
        data = self._buf[self._pos:end]
        self._pos = end
        if self.out is not None:
            self.out.write(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        while True:
            idx = self._buf.find(b"\n", self._pos)
            if idx >= 0:
                end = idx + 1
                break
            if 0 <= limit <= len(self._buf) - self._pos or not self._fill():
                end = len(self._buf)
                break
        if limit >= 0:
            end = min(end, self._pos + limit)
        return self._take(end)

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) - self._pos < size:
            if not self._fill():
                break
        end = len(self._buf) if size < 0 else min(len(self._buf), self._pos + size)
        return self._take(end)




def _archive_chunks(stream: IO[bytes], first: bytes) -> Iterator[bytes]:
    yield first
    while chunk := stream.read(CHUNK):
        yield chunk


class BackupMixin:
    _http: Http

    def backup_create(self, out: PathOrFile, *, shares: int | None = None,
                      threshold: int | None = None,
                      custodian_keys: Sequence[str | bytes] = (),
                      custodian_threshold: int | None = None,
                      keys: Sequence[str] | None = None) -> BackupCreated:
        """Back up the server (or only ``keys``: ids, ``namespace:name`` or names) into
        ``out``: a path (written to a temporary file, fsynced, renamed into place only when
        the whole archive arrived and verified) or a writable binary file.

        Custody: ``shares`` N with ``threshold`` M (default 2), and/or ``custodian_keys``
        (PEM public keys: RSA-4096, or X25519 + ML-KEM-768) with ``custodian_threshold``.
        Raises InvalidArgument (no custodian, a bad threshold or key; an archive that
        does not verify), PermissionDenied (``backup.create``), NotFound (a key),
        Unavailable (the server broke the backup off part-way: the archive is incomplete
        and was not kept)."""
        body: dict[str, Any] = {"shares": shares, "threshold": threshold,
                                "custodian_keys": [k.decode() if isinstance(k, bytes) else k
                                                   for k in custodian_keys] or None,
                                "custodian_threshold": custodian_threshold,
                                "keys": list(keys) if keys is not None else None}
        content = msgspec.json.encode({k: v for k, v in body.items() if v is not None})
        if isinstance(out, str | os.PathLike):
            result: BackupCreated = write_atomically(Path(out), lambda f: self._backup(
                content, f))
            return result
        return self._backup(content, out)

    def _backup(self, content: bytes, out: IO[bytes]) -> BackupCreated:
        with self._http.stream("POST", "/v1/sys/backup", content=content,
                               content_type="application/json") as response:
            tee = _Tee(response.iter_bytes())
            try:
                line = tee.readline(MAX_FIRST_LINE)
                try:
                    started = msgspec.json.decode(line, type=_Started)
                except msgspec.DecodeError:
                    raise Internal("unexpected answer from keykeeper: the backup does not "
                                   "start with its results line") from None
                tee.out = out
                report = read_verified(tee, key=None, signer=started.signer)  # type: ignore[arg-type]
            except httpx.TransportError:
                raise Unavailable("the server broke the backup off part-way (see its log, "
                                  f"request {self._http.last_request_id}): the archive is "
                                  "incomplete and was not kept") from None
        return BackupCreated(backup_id=started.backup_id, signer=started.signer,
                             scope=started.scope, shares=started.shares,
                             custodians=started.custodians,
                             custodian_threshold=started.custodian_threshold,
                             records=report.records, counts=report.counts,
                             threshold=started.threshold)

    def backup_restore(self, archive: PathOrFile, *, shares: Sequence[str] = (),
                       custodian_keys: Sequence[bytes] = (), signer: str | None = None,
                       force: bool = False, restore_destroyed: bool = False,
                       approval_id: str | None = None) -> BackupRestored:
        """Restore ``archive`` (a path, or a seekable binary file from its start) into the
        server, opened with ``shares`` (text) or ``custodian_keys`` (PEM private keys:
        the backup key is recovered here and only it is sent). ``signer``: the signer's
        PEM public key or fingerprint the archive must be signed by (needed for an
        archive of another instance, whether opened with shares or custodian keys).

        ``force``: into a non-empty instance, under dual control: raises ApprovalRequired
        (its ``approval_id``) until approved; then call again with ``approval_id``.
        ``restore_destroyed`` (with ``force``) also brings back versions this instance
        knows as destroyed (audited). A forced restore adds key data only and deletes
        nothing. Raises InvalidArgument (the archive is refused, a wrong or too few
        shares or keys: nothing is written), FailedPrecondition (not empty, an unpinned
        foreign signer), PayloadTooLarge, PermissionDenied."""
        if isinstance(archive, str | os.PathLike):
            with open(archive, "rb") as stream:
                return self._restore(stream, shares, custodian_keys, signer, force,
                                     restore_destroyed, approval_id)
        return self._restore(archive, shares, custodian_keys, signer, force,
                             restore_destroyed, approval_id)

    def _restore(self, stream: IO[bytes], shares: Sequence[str], custodian_keys: Sequence[bytes],
                 signer: str | None, force: bool, restore_destroyed: bool,
                 approval_id: str | None) -> BackupRestored:
        if shares and custodian_keys:
            raise InvalidArgument("give shares or custodian keys, not both")
        options: dict[str, Any] = {"shares": list(shares) or None, "force": force or None,
                                   "restore_destroyed": restore_destroyed or None,
                                   "approval_id": approval_id,
                                   "signer": load_signer(signer) if signer else None}
        start = stream.tell()
        if custodian_keys:
            private = [load_private_keys(k) for k in custodian_keys]
            header = ArchiveReader(stream).header
            key = open_key(header, private_keys=private)
            assert key is not None
            options["backup_key"] = base64.b64encode(key.raw).decode("ascii")
            stream.seek(start)
        first = msgspec.json.encode({k: v for k, v in options.items() if v is not None})
        return self._http_restore(_archive_chunks(stream, first + b"\n"))

    def _http_restore(self, content: Iterator[bytes]) -> BackupRestored:
        with self._http.stream("POST", "/v1/sys/restore", content=content,
                               content_type=ARCHIVE_TYPE) as response:
            data = response.read()
        try:
            return msgspec.json.decode(data, type=BackupRestored)
        except msgspec.DecodeError as exc:
            raise Internal(f"unexpected answer from keykeeper: {exc}") from None

    def backup_signing_key(self) -> BackupSigningKey:
        """The server's backup signing key (PEM) and fingerprint, to pin with ``--signer``
        when verifying or restoring its archives elsewhere (``backup.read``)."""
        return self._http.call("GET", "/v1/sys/backup/signing-key", BackupSigningKey)
