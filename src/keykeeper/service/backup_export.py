"""Backup create (docs/backup-format.md; issue 7 §1): one archive of the whole store, or of
chosen keys, streamed line by line in constant memory.

Every version's material is unwrapped under its namespace KEK and at once re-wrapped under
the archive's fresh backup key (backup/keys.py); HSM-protected versions carry only their
``hsm_key_id`` reference and destroyed versions no material. The store is read in one
read-only snapshot (PostgreSQL REPEATABLE READ; SQLite one read transaction), so the
archive is one consistent point in time. Before reading, the audit chain is checkpointed
(signed) and its head goes in as the last record.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, select

from keykeeper import __version__
from keykeeper.backup.custodians import load_public_key, protect
from keykeeper.backup.format import FORMAT, VERSION, ArchiveWriter, Material, rfc3339
from keykeeper.backup.keys import BackupKey, fingerprint, new_backup_key
from keykeeper.custody.keyring import WrappedVersion
from keykeeper.domain.names import parse_key_ref
from keykeeper.errors import (
    FailedPrecondition,
    InvalidArgument,
    KeykeeperError,
    NotFound,
    Sealed,
)
from keykeeper.service.audit import Auditor
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.store import backup_tables as bt
from keykeeper.store import schema

__all__ = ["AUDIT_TABLE", "DEFAULT_MIN_QUORUM", "MAX_MIN_QUORUM", "MIN_QUORUM_SETTING",
           "SIGN_INFO", "BackupCreate", "BackupPlan", "BackupSigner", "check_quorum"]

log = logging.getLogger("keykeeper.backup")

SIGN_INFO = b"keykeeper/backup/sign/v1"
AUDIT_TABLE = "audit_head"
_AUDIT_COLUMNS = [["chain", "string"], ["seq", "int"], ["hash", "string"],
                  ["checkpoint_seq", "int"], ["checkpoint_record", "string"],
                  ["public_key", "string"]]
MAX_CUSTODIANS = 32
MAX_SELECTED_KEYS = 10_000
#: ``KEYKEEPER_BACKUP_MIN_QUORUM`` by default: no single person opens an archive alone.
DEFAULT_MIN_QUORUM = 2
MAX_MIN_QUORUM = 32
MIN_QUORUM_SETTING = "KEYKEEPER_BACKUP_MIN_QUORUM"
_KEYED = {"keys": "id", "key_labels": "key_id", "key_versions": "key_id",
          "key_events": "key_id", "destruction_receipts": "key_id"}


class BackupSigner:
    """The instance's backup signing key: Ed25519 from ``custody.derive(SIGN_INFO)``, the
    same on every node and after every unseal. Raises Sealed while sealed."""

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    def private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._d.custody.derive(SIGN_INFO, 32))

    def public_raw(self) -> bytes:
        return self.private().public_key().public_bytes_raw()

    def public_pem(self) -> str:
        return self.private().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def fingerprint(self) -> str:
        return fingerprint(self.public_raw())


@dataclass(repr=False)
class BackupPlan:
    """A checked backup request: ``shares`` (text, shown once to the caller, never stored)
    and what :meth:`BackupCreate.stream` needs."""

    backup_id: str
    key: BackupKey
    header: dict[str, Any]
    shares: list[str] = field(default_factory=list)
    key_ids: frozenset[str] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    digest: Any = field(default_factory=hashlib.sha256)

    def __repr__(self) -> str:
        return f"BackupPlan({self.backup_id})"


def check_quorum(custody: dict[str, Any], min_quorum: int) -> None:
    """Refuse custody that fewer than ``min_quorum`` people could open: every way to open
    the archive (the share threshold M, the custodian threshold M) must need at least
    ``min_quorum`` of them (issue 7 §1: "no single person can open a backup alone unless
    the policy says M = 1"). ``custody`` is the header's custody object
    (backup/custodians.py ``protect``). Raises FailedPrecondition naming
    ``KEYKEEPER_BACKUP_MIN_QUORUM``."""
    for block, what in (("shares", "share threshold"),
                        ("custodians", "custodian threshold")):
        entry = custody.get(block)
        if not isinstance(entry, dict):
            continue
        m = int(entry.get("threshold") or 0)
        if m < min_quorum:
            raise FailedPrecondition(
                f"the backup policy needs at least {min_quorum} people to open an archive "
                f"({MIN_QUORUM_SETTING}={min_quorum}): a {what} of {m} is below it; ask for "
                f"a {what} of {min_quorum} or more")


class BackupCreate:
    """Makes archives. ``min_quorum`` (``KEYKEEPER_BACKUP_MIN_QUORUM``, set by config.py;
    default 2): the fewest people any archive may be opened by (:func:`check_quorum`)."""

    def __init__(self, deps: Deps, authz: Authorizer, auditor: Auditor,
                 min_quorum: int = DEFAULT_MIN_QUORUM) -> None:
        self._d = deps
        self._authz = authz
        self._auditor = auditor
        self.signer = BackupSigner(deps)
        self.min_quorum = min_quorum

    def plan(self, ctx: RequestContext, *, shares: int | None = None,
             threshold: int | None = None, custodian_keys: Sequence[str | bytes] = (),
             custodian_threshold: int | None = None,
             keys: Sequence[str] | None = None) -> BackupPlan:
        """Authorize (``backup.create``) and check a backup: custodians (``shares`` N with
        ``threshold`` M; custodian public keys in PEM with ``custodian_threshold``), and
        optionally a selection of ``keys`` (ids, ``namespace:name`` or names). Raises
        PermissionDenied, InvalidArgument (no custodian, a bad threshold or key file),
        FailedPrecondition (a threshold below ``min_quorum``: REST, CLI and scheduled
        backups alike), NotFound (a selected key), Sealed."""
        self._authz.require(ctx, "backup.create")
        if len(custodian_keys) > MAX_CUSTODIANS:
            raise InvalidArgument(f"at most {MAX_CUSTODIANS} custodian keys")
        publics = [load_public_key(k.encode() if isinstance(k, str) else k)
                   for k in custodian_keys]
        key_ids = self._select(keys) if keys is not None else None
        backup_id = "bk-" + secrets.token_hex(8)
        raw = new_backup_key()
        custody, texts = protect(raw, backup_id, shares=shares, threshold=threshold,
                                 custodians=publics, custodian_threshold=custodian_threshold)
        check_quorum(custody, self.min_quorum)
        key = BackupKey(raw, backup_id)
        tables = [{"name": spec.name, "columns": [list(c) for c in bt.column_kinds(spec)]}
                  for spec in bt.ARCHIVED]
        tables.append({"name": AUDIT_TABLE, "columns": _AUDIT_COLUMNS})
        header = {
            "format": FORMAT, "version": VERSION, "backup_id": backup_id,
            "created_at": rfc3339(self._d.clock()),
            "source": {"keykeeper": __version__, "database": self._d.engine.dialect.name,
                       "created_by": ctx.actor},
            "scope": ({"kind": "full"} if key_ids is None
                      else {"kind": "keys", "keys": sorted(key_ids)}),
            "cipher": "AES-256-GCM", "kdf": "HKDF-SHA256",
            "key_check": _b64(key.check), "custody": custody,
            "signer": {"algorithm": "Ed25519", "public_key": _b64(self.signer.public_raw()),
                       "fingerprint": self.signer.fingerprint()},
            "tables": tables,
        }
        return BackupPlan(backup_id=backup_id, key=key, header=header, shares=texts,
                          key_ids=key_ids)

    def signing_key(self, ctx: RequestContext) -> tuple[str, str]:
        """``(PEM, fingerprint)`` of this instance's backup signing key (Ed25519), to pin
        when verifying or restoring its archives elsewhere. Raises PermissionDenied
        (``backup.read``), Sealed."""
        self._authz.require(ctx, "backup.read")
        return self.signer.public_pem(), self.signer.fingerprint()

    def _select(self, refs: Sequence[str]) -> frozenset[str]:
        if not refs or len(refs) > MAX_SELECTED_KEYS:
            raise InvalidArgument(f"select 1..{MAX_SELECTED_KEYS} keys")
        ids = set()
        with self._d.reading() as conn:
            for ref in refs:
                parsed = parse_key_ref(ref)
                found = (self._d.keys.get_by_id(conn, parsed.key_id) if parsed.key_id
                         else self._d.keys.get_by_name(conn, parsed.namespace or "default",
                                                       parsed.name or ""))
                if found is None:
                    raise NotFound(f"key '{ref}' not found")
                ids.add(found.id)
        return frozenset(ids)

    # -- the stream -------------------------------------------------------------------------
    def stream(self, ctx: RequestContext, plan: BackupPlan) -> Iterator[bytes]:
        """The archive's lines, in order. The audit chain is checkpointed first; the store
        is read in one snapshot. A failure part-way raises (the archive then has no
        manifest and never verifies). ``plan.counts`` and ``plan.digest`` (SHA-256 of the
        whole archive) are set when it ends."""
        audit = self._audit_head(ctx)
        private = self.signer.private()
        writer = ArchiveWriter(plan.header, private.sign, plan.key.mac)

        def out(line: bytes) -> bytes:
            plan.digest.update(line)
            return line

        yield out(writer.header_line())
        with self._d.reading() as conn:
            self._snapshot(conn)
            try:
                keks: dict[str, bytes] = {}
                for spec in bt.ARCHIVED:
                    for row in self._rows(conn, spec, plan):
                        if spec.material is not None:
                            row = self._rewrap(conn, row, plan.key, spec.material, keks)
                        yield out(writer.record(spec.name, row))
            finally:
                conn.rollback()
        yield out(writer.record(AUDIT_TABLE, audit))
        yield out(writer.finish())
        plan.counts = writer.counts
        log.info("backup %s made: %s", plan.backup_id, plan.counts)

    def _snapshot(self, conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # one read transaction: one WAL snapshot

    def _rows(self, conn: Connection, spec: bt.ArchivedTable,
              plan: BackupPlan) -> Iterator[dict[str, Any]]:
        selected = plan.key_ids
        column = _KEYED.get(spec.name)
        namespaces: set[str] = set()
        if selected is not None and spec.name == "namespaces":
            namespaces = {k.namespace for k in (self._d.keys.get_by_id(conn, i)
                                                for i in selected) if k is not None}
        rows = (self._material_rows(conn, spec) if spec.material is not None
                else bt.iter_rows(conn, spec))
        for row in rows:
            if selected is not None:
                if column is not None and row[column] not in selected:
                    continue
                if spec.name == "namespaces" and row["name"] not in namespaces:
                    continue
            yield row

    def _material_rows(self, conn: Connection,
                       spec: bt.ArchivedTable) -> Iterator[dict[str, Any]]:
        """The versions, each with its key's namespace and algorithm (``_namespace``,
        ``_algorithm``) from one joined, streamed query: no query per key."""
        t, k = spec.table, schema.keys
        cols = [c for c in t.columns if c.name not in spec.omitted]
        return bt.stream(conn, select(*cols, k.c.namespace.label("_namespace"),
                                      k.c.algorithm.label("_algorithm"))
                         .join(k, k.c.id == t.c.key_id).order_by(*t.primary_key.columns))

    def _rewrap(self, conn: Connection, row: dict[str, Any], key: BackupKey, column: str,
                keks: dict[str, bytes]) -> dict[str, Any]:
        """``row`` (from :meth:`_material_rows`) with its material re-wrapped under the
        backup key; ``keks`` caches each namespace's wrapped KEK."""
        namespace, algorithm = str(row.pop("_namespace")), str(row.pop("_algorithm"))
        blob = row.get(column)
        if blob is None:
            return row
        if namespace not in keks:
            keks[namespace] = self._kek(conn, namespace)
        material = self._d.custody.unwrap_material(
            WrappedVersion(namespace, keks[namespace], algorithm, bytes(blob)), row["key_id"],
            int(row["version"]))
        wrapped = key.wrap(material, namespace=namespace, key_id=row["key_id"],
                           version=int(row["version"]), algorithm=algorithm)
        return {**row, column: Material(namespace, algorithm, wrapped)}

    def _kek(self, conn: Connection, namespace: str) -> bytes:
        """The wrapped KEK of a namespace."""
        ns = schema.namespaces
        return bytes(conn.execute(select(ns.c.wrapped_kek)
                                  .where(ns.c.name == namespace)).scalar_one())

    def _audit_head(self, ctx: RequestContext) -> dict[str, Any]:
        """Checkpoint (sign) the audit chain now and describe its head; an empty row when
        the audit trail is off."""
        try:
            head = self._auditor.checkpoint_now(ctx)
        except FailedPrecondition:
            return {}
        except Sealed:
            if self._d.custody.sealed:
                raise
            # An auditor without keys (no audit keys wired, as in-process harnesses run):
            # the head as written, unsigned.
            written = self._auditor.written_head()
            return {"chain": written.chain, "seq": written.seq, "hash": written.hash,
                    "checkpoint_seq": written.checkpoint}
        record = None
        if self._auditor.search is not None:
            try:
                row = self._auditor.search.record(head.chain, head.seq)
                record = row.record if row is not None else None
            except KeykeeperError:
                record = None
        return {"chain": head.chain, "seq": head.seq, "hash": head.hash,
                "checkpoint_seq": head.checkpoint, "checkpoint_record": record,
                "public_key": self._auditor.public_key_pem()}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
