"""Backup restore (issue 7 §2; docs/backup-format.md, Restore).

1. Authorize ``backup.restore``; open the archive's backup key (shares, or the key a
   client recovered with custodian private keys) and check it against the key check.
2. Verify the whole archive first, writing nothing: structure, order, manifest, digests,
   the signature (pinned when a signer is given; an archive opened with a recovered key
   and signed by another instance must be pinned) and the MAC, and open every material.
3. In ONE transaction: refuse a non-empty instance unless forced (and forcing is under
   dual control: the ``backup.restore`` approval, consumed once); give every namespace new
   here a fresh KEK of this instance (one that exists keeps its own), re-wrap every
   version's material under it, and write every row as archived. Versions this instance
   knows as destroyed (erased rows, receipts) stay destroyed unless
   ``restore_destroyed`` is also forced, which the audit trail records.

A crash part-way leaves the transaction uncommitted: the database rolls it back (SQLite's
journal, PostgreSQL's WAL) and the server comes back with the store as it was before the
restore, which can simply be run again. Nothing half-restored is ever served: other
requests see the old store until the commit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from keykeeper.authz.model import ROOT
from keykeeper.backup.errors import ArchiveInvalid, WrongBackupKey
from keykeeper.backup.format import ArchiveReader, Header, Material, Record
from keykeeper.backup.keys import BackupKey, fingerprint
from keykeeper.backup.verify import open_key, read_verified
from keykeeper.domain.names import DEFAULT_NAMESPACE
from keykeeper.domain.states import ERASED, KeyState, VersionState
from keykeeper.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from keykeeper.service.approvals import Approvals
from keykeeper.service.audit import Auditor
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.backup_export import AUDIT_TABLE, BackupSigner
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.lookup import KeyLookup
from keykeeper.store import backup_tables as bt
from keykeeper.store import schema
from keykeeper.store.approvals import ApprovalRepository

__all__ = ["BackupRestore", "RestoreOptions", "RestoreResult"]

log = logging.getLogger("keykeeper.backup")

BATCH = 500
_ERASED = frozenset(str(s) for s in ERASED)
_DESTROYED_KEY = frozenset((str(KeyState.DESTROYED), str(KeyState.DESTROYED_COMPROMISED)))
_USED = "used"


@dataclass(repr=False)
class RestoreOptions:
    """``shares`` (text) or ``backup_key`` (32 bytes a client recovered with custodian
    private keys); ``signer``: the fingerprint the archive must be signed by; ``force``:
    restore into a non-empty instance (dual control); ``restore_destroyed``: also bring
    back versions this instance knows as destroyed (needs ``force``); ``approval_id``: the
    executed ``backup.restore`` approval a forced restore consumes."""

    shares: Sequence[str] = ()
    backup_key: bytes | None = None
    signer: str | None = None
    force: bool = False
    restore_destroyed: bool = False
    approval_id: str | None = None

    def __repr__(self) -> str:
        return (f"RestoreOptions(force={self.force}, restore_destroyed="
                f"{self.restore_destroyed}, <secrets hidden>)")


@dataclass
class RestoreResult:
    backup_id: str
    counts: dict[str, int]
    forced: bool
    kept_destroyed: list[str] = field(default_factory=list)     # "key_id:version"
    restored_destroyed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"backup_id": self.backup_id, "counts": self.counts, "forced": self.forced,
                "kept_destroyed": self.kept_destroyed,
                "restored_destroyed": self.restored_destroyed}


@dataclass
class _Known:
    """What this instance knows of destruction, read in the restore's transaction."""

    versions: dict[tuple[str, int], tuple[str, Any]] = field(default_factory=dict)
    keys: dict[str, tuple[str, Any]] = field(default_factory=dict)
    deleted_namespaces: dict[str, Any] = field(default_factory=dict)


class BackupRestore:
    def __init__(self, deps: Deps, authz: Authorizer, auditor: Auditor, approvals: Approvals,
                 lookup: KeyLookup, signer: BackupSigner) -> None:
        self._d = deps
        self._authz = authz
        self._auditor = auditor
        self._approvals = approvals
        self._lookup = lookup
        self._signer = signer
        self._approval_repo = ApprovalRepository()

    def execute_approved(self, ctx: RequestContext, arguments: dict[str, Any]) -> dict[str, Any]:
        """Executor of an approved ``backup.restore``: the archive and shares are not kept
        in a request, so approval authorizes the requester to run that restore once
        (``approval_id``)."""
        return {"authorized": True, "backup_id": arguments.get("backup_id"),
                "archive_sha256": arguments.get("archive_sha256")}

    def restore(self, ctx: RequestContext, open_archive: Callable[[], IO[bytes]],
                opts: RestoreOptions, *, archive_sha256: str) -> RestoreResult:
        """Restore the archive ``open_archive()`` returns (opened once per pass). Raises
        PermissionDenied, ArchiveInvalid / WrongBackupKey (400: nothing written),
        FailedPrecondition (not empty and not forced; an unpinned foreign signer),
        ApprovalRequired (202: a forced restore waits for approval), Sealed."""
        self._authz.require(ctx, "backup.restore")
        self._lookup.require_unsealed()
        if opts.restore_destroyed and not opts.force:
            raise InvalidArgument("restore_destroyed needs force")
        if not opts.shares and opts.backup_key is None:
            raise WrongBackupKey("a restore needs the shares of the archive (or the backup "
                                 "key recovered with custodian private keys)")
        with open_archive() as stream:
            header = ArchiveReader(stream).header
        _check_tables(header)
        own = self._signer.fingerprint()
        actual = fingerprint(header.signer_public)
        if (opts.signer is None and actual != own and opts.backup_key is not None):
            raise FailedPrecondition(f"the archive is signed by {actual}, not by this "
                                     "instance: pin its signer (--signer) to restore it with "
                                     "custodian keys")
        key = open_key(header, shares=opts.shares, backup_key=opts.backup_key)
        assert key is not None
        with open_archive() as stream:  # pass 1: everything verified, nothing written
            read_verified(stream, key=key, signer=opts.signer, header=header)
        if opts.force:
            self._gate(ctx, header, opts, archive_sha256)
        keks: dict[str, bytes] = {}
        try:
            with self._d.transaction() as conn:
                if opts.force and opts.approval_id is not None:
                    self._consume(conn, ctx, opts.approval_id)
                known = self._check_target(conn, opts.force, only=_scope(header))
                try:
                    with open_archive() as stream:
                        result = self._write(conn, stream, header, key, opts, known, keks)
                except IntegrityError:  # the transaction rolls back: nothing is written
                    raise ArchiveInvalid("the archive's rows conflict with each other or "
                                         "with this instance (a duplicate key, version or "
                                         "name, or a row whose key or namespace is not "
                                         "there), or another restore ran at the same "
                                         "time") from None
        finally:
            self._forget_caches(keks)
        self._audit_restored(ctx, result, archive_sha256)
        if result.restored_destroyed:
            self._auditor.note("backup.restore_destroyed", reason="forced",
                               detail=f"backup {header.backup_id} restored version(s) this "
                                      "instance knew as destroyed: "
                                      + ", ".join(result.restored_destroyed[:100]))
        log.warning("backup %s restored by %s%s: %s", header.backup_id, ctx.actor,
                    " (forced)" if opts.force else "", result.counts)
        return result

    def _audit_restored(self, ctx: RequestContext, result: RestoreResult,
                        digest: str) -> None:
        """After the commit: ``items`` (keys restored) on the request's own outcome record,
        and a ``backup.restored`` record with what was restored, from which archive, by
        whom (the request's records carry no counts)."""
        c = result.counts
        ctx.items = c.get("keys", 0)
        self._auditor.note("backup.restored", reason="forced" if result.forced else None,
                           detail=(f"backup {result.backup_id} (archive sha256 {digest}) "
                                   f"restored by {ctx.actor} over {ctx.interface} (request "
                                   f"{ctx.request_id}"
                                   + (f", approval {ctx.approval_id}" if ctx.approval_id
                                      else "")
                                   + f"): {c.get('keys', 0)} keys, "
                                   f"{c.get('key_versions', 0)} versions, "
                                   f"{c.get('namespaces', 0)} namespaces, "
                                   f"{len(result.kept_destroyed)} versions kept destroyed, "
                                   f"{len(result.restored_destroyed)} brought back"))

    # -- dual control -----------------------------------------------------------------------
    def _gate(self, ctx: RequestContext, header: Header, opts: RestoreOptions,
              digest: str) -> None:
        arguments = {"backup_id": header.backup_id, "archive_sha256": digest, "force": True,
                     "restore_destroyed": opts.restore_destroyed}
        if opts.approval_id is None:
            self._approvals.gate(ctx, "backup.restore", arguments,
                                 summary=f"restore backup {header.backup_id} into this "
                                         "non-empty instance"
                                         + (", bringing back destroyed versions"
                                            if opts.restore_destroyed else ""))
            return
        with self._d.reading() as conn:
            approval = self._approval_repo.get(conn, opts.approval_id)
        if approval is None or approval.operation != "backup.restore":
            raise NotFound(f"approval '{opts.approval_id}' not found")
        who = ctx.principal.name if ctx.principal else ""
        if approval.requester != who:
            raise PermissionDenied("the approval was requested by another principal")
        if approval.state != "executed" or not approval.result:
            raise FailedPrecondition(f"approval '{approval.id}' is {approval.state}, not "
                                     "approved")
        if any(approval.arguments.get(k) != v for k, v in arguments.items()):
            raise FailedPrecondition("the approval was given for another archive or other "
                                     "options")
        if approval.result.get(_USED):
            raise FailedPrecondition(f"approval '{approval.id}' was used already")

    def _consume(self, conn: Connection, ctx: RequestContext, approval_id: str) -> None:
        approval = self._approval_repo.get(conn, approval_id)
        assert approval is not None and approval.result is not None
        new = {**approval.result, _USED: True}
        if not self._approval_repo.swap_result(conn, approval_id, old=approval.result, new=new):
            raise FailedPrecondition(f"approval '{approval_id}' was used already")
        ctx.approval_id = approval_id

    # -- the target -------------------------------------------------------------------------
    def _check_target(self, conn: Connection, force: bool, *,
                      only: frozenset[str] | None = None) -> _Known:
        keys = int(conn.execute(select(schema.keys.c.id).limit(1)).first() is not None)
        others = conn.execute(select(schema.namespaces.c.name)
                              .where(schema.namespaces.c.name != DEFAULT_NAMESPACE)
                              .limit(1)).first()
        receipts = conn.execute(select(schema.destruction_receipts.c.id).limit(1)).first()
        empty = not keys and others is None and receipts is None
        if not empty and not force:
            raise FailedPrecondition("this instance is not empty (it holds keys or "
                                     "namespaces other than default): a restore goes into an "
                                     "empty instance, or is forced under dual control")
        known = _Known()
        if empty:
            return known
        t = schema.key_versions
        for r in conn.execute(select(t.c.key_id, t.c.version, t.c.state, t.c.destroyed_at)
                              .where(t.c.state.in_(_ERASED))):
            known.versions[(r.key_id, int(r.version))] = (r.state, r.destroyed_at)
        for r in conn.execute(select(schema.destruction_receipts.c.receipt)):
            try:
                doc = json.loads(r.receipt)
                for v in doc.get("versions", []):
                    known.versions.setdefault((str(doc["key_id"]), int(v["version"])),
                                              (str(v.get("state") or "destroyed"), None))
            except (ValueError, KeyError, TypeError):
                continue
        k = schema.keys
        for kr in conn.execute(select(k.c.id, k.c.state, k.c.updated_at)
                               .where(k.c.state.in_(_DESTROYED_KEY))):
            known.keys[kr.id] = (kr.state, kr.updated_at)
        n = schema.namespaces
        for nr in conn.execute(select(n.c.name, n.c.deleted_at)
                               .where(n.c.deleted_at.is_not(None))):
            known.deleted_namespaces[nr.name] = nr.deleted_at
        # A forced restore replaces the key domain (keys, versions, labels, events); that
        # of a per-key archive (``only``) replaces its keys and leaves the others be.
        for table in (schema.key_labels, schema.key_events, schema.import_tokens,
                      schema.key_versions):
            conn.execute(table.delete() if only is None
                         else table.delete().where(table.c.key_id.in_(only)))
        conn.execute(schema.keys.delete() if only is None
                     else schema.keys.delete().where(schema.keys.c.id.in_(only)))
        return known

    # -- writing ----------------------------------------------------------------------------
    def _write(self, conn: Connection, stream: IO[bytes], header: Header, key: BackupKey,
               opts: RestoreOptions, known: _Known, keks: dict[str, bytes]) -> RestoreResult:
        specs = {spec.name: spec for spec in bt.ARCHIVED}
        only = _scope(header)
        result = RestoreResult(backup_id=header.backup_id, counts={}, forced=opts.force)
        pending: dict[str, list[dict[str, Any]]] = {}
        key_meta: dict[str, tuple[str, str]] = {}
        receipts: set[str] = {r.id for r in conn.execute(
            select(schema.destruction_receipts.c.id))}

        def flush(table: str) -> None:
            rows = pending.pop(table, [])
            if rows:
                bt.insert_rows(conn, specs[table], rows)

        def on_record(record: Record, material: bytes | None) -> None:
            table = record.table
            if table == AUDIT_TABLE:
                return
            spec = specs.get(table)
            if spec is None:
                raise ArchiveInvalid(f"table {table} is not known to this instance")
            result.counts[table] = result.counts.get(table, 0) + 1
            row = dict(record.row)
            if table == "namespaces":
                self._namespace(conn, row, keks, known, opts)
                return
            if table == "keys":
                if only is not None and row["id"] not in only:
                    raise ArchiveInvalid(f"key {str(row['id'])[:64]} is not among the keys "
                                         "the archive's scope names")
                key_meta[row["id"]] = (row["namespace"], row["algorithm"])
                gone = known.keys.get(row["id"])
                if gone is not None and not opts.restore_destroyed:
                    row["state"], row["updated_at"] = gone[0], gone[1] or row["updated_at"]
                if row["namespace"] in known.deleted_namespaces and not opts.restore_destroyed:
                    row["state"] = str(KeyState.DESTROYED)
            elif table == "key_versions":
                row = self._version(row, material, key_meta, keks, known, opts, result)
            elif table in ("principals", "tokens", "roles", "grants", "system_config"):
                _check_identity(spec, row)
                self._replace(conn, spec, row)
            elif table == "destruction_receipts" and row["id"] in receipts:
                return
            bucket = pending.setdefault(table, [])
            bucket.append(row)
            if len(bucket) >= BATCH:
                flush(table)
            for earlier in list(pending):
                if earlier != table:
                    flush(earlier)

        read_verified(stream, key=key, signer=opts.signer, on_record=on_record, header=header)
        for table in list(pending):
            flush(table)
        return result

    def _namespace(self, conn: Connection, row: dict[str, Any], keks: dict[str, bytes],
                   known: _Known, opts: RestoreOptions) -> None:
        name = row["name"]
        existing = self._d.system.get_namespace(conn, name, include_deleted=True)
        erased = name in known.deleted_namespaces and not opts.restore_destroyed
        if erased:
            keks[name] = b""
            return  # stays deleted: its KEK is gone, its keys stay destroyed
        if row.get("deleted_at") is not None:
            keks[name] = b""
            wrapped = b""
        elif existing is not None and existing.deleted_at is None and existing.wrapped_kek:
            wrapped = existing.wrapped_kek  # its KEK stays: other nodes may hold it
        else:
            wrapped = self._d.custody.new_wrapped_kek(name)
        keks[name] = wrapped
        t = schema.namespaces
        values = {k: v for k, v in row.items() if k in t.c}
        values["wrapped_kek"] = wrapped
        if existing is not None:
            conn.execute(t.update().where(t.c.name == name).values(**values))
        else:
            conn.execute(t.insert().values(**values))

    def _version(self, row: dict[str, Any], material: bytes | None,
                 key_meta: dict[str, tuple[str, str]], keks: dict[str, bytes], known: _Known,
                 opts: RestoreOptions, result: RestoreResult) -> dict[str, Any]:
        key_id, version = row["key_id"], int(row["version"])
        meta = key_meta.get(key_id)
        if meta is None:
            raise ArchiveInvalid(f"version {version} of key {key_id} comes before its key")
        namespace, algorithm = meta
        archived = row.get("wrapped_material")
        if isinstance(archived, Material) and (archived.namespace, archived.algorithm) != meta:
            raise ArchiveInvalid(f"the material of key {key_id} version {version} names "
                                 "another namespace or algorithm than its key")
        gone = known.versions.get((key_id, version))
        ref = f"{key_id}:{version}"
        if gone is not None and row["state"] not in _ERASED:
            if opts.restore_destroyed:
                result.restored_destroyed.append(ref)
            else:
                result.kept_destroyed.append(ref)
                state = (VersionState.DESTROYED_COMPROMISED if row["state"] in (
                    str(VersionState.COMPROMISED), str(VersionState.DESTROYED_COMPROMISED))
                    else VersionState(gone[0]) if gone[0] in _ERASED
                    else VersionState.DESTROYED)
                return {**row, "state": str(state), "wrapped_material": None,
                        "destroyed_at": gone[1] or row.get("destroyed_at")
                        or row["created_at"]}
        if material is None:
            return {**row, "wrapped_material": None}
        kek = keks.get(namespace, b"")
        if not kek:
            return {**row, "wrapped_material": None}
        wrapped = self._d.custody.wrap_material(namespace, kek, key_id, version, algorithm,
                                                material)
        return {**row, "wrapped_material": wrapped}

    def _replace(self, conn: Connection, spec: bt.ArchivedTable, row: dict[str, Any]) -> None:
        """Delete this instance's row with the archived row's primary key (it is then
        inserted as archived): identities and policies are merged, the archive winning."""
        t = spec.table
        cond = [c == row[c.name] for c in t.primary_key.columns]
        conn.execute(t.delete().where(*cond))

    def _forget_caches(self, touched: dict[str, bytes]) -> None:
        """After a restore (or a failed one): nothing cached may outlive it (the KEKs of
        namespaces it touched, committed or not, included)."""
        custody = self._d.custody
        custody.handles.clear()
        with self._d.reading() as conn:
            names = {r.name for r in conn.execute(select(schema.namespaces.c.name))}
        for name in names | set(touched):
            self._lookup.forget_namespace(name)
        self._lookup.forget_all()  # keys cached by id or bare name too
        self._authz.invalidate()


def _check_tables(header: Header) -> None:
    """Refuse an archive whose header names a table, a column or a column kind this
    instance does not archive, or lacks a column a row cannot go without: the signature
    and the MAC only prove the archive is as its maker (whoever held the shares) wrote it,
    so a restore writes only what a backup of this schema holds (ArchiveInvalid)."""
    specs = {spec.name: spec for spec in bt.ARCHIVED}
    for name, columns in header.tables.items():
        if name == AUDIT_TABLE:
            continue
        spec = specs.get(name)
        if spec is None:
            raise ArchiveInvalid(f"the archive holds table {name[:64]!r}, which a backup "
                                 "does not hold")
        kinds = dict(bt.column_kinds(spec))
        for column, kind in columns:
            if kinds.get(column) != kind:
                raise ArchiveInvalid(f"table {name} has a column {column[:64]!r} of kind "
                                     f"{kind} that a backup does not hold")
        given = {c for c, _ in columns}
        for c in spec.table.columns:
            required = c.primary_key or (not c.nullable and c.default is None
                                         and c.server_default is None)
            if (required and c.name not in given and c.name not in spec.omitted
                    and c.name not in spec.surrogate):
                raise ArchiveInvalid(f"table {name} lacks the column {c.name}")


def _check_identity(spec: bt.ArchivedTable, row: dict[str, Any]) -> None:
    """What a backup never holds of identities and policies: ``system_config`` rows other
    than the policies, and anything of ``root``, the break-glass principal of each
    instance's own init token (ArchiveInvalid)."""
    if spec.config_names and row.get("name") not in spec.config_names:
        raise ArchiveInvalid(f"the archive holds the system_config row "
                             f"{str(row.get('name'))[:64]!r}: a backup holds only the "
                             f"policies ({', '.join(spec.config_names)})")
    if ((spec.name == "tokens" and row.get("principal") == ROOT)
            or (spec.name == "principals" and row.get("name") == ROOT)):
        raise ArchiveInvalid(f"the archive holds a {spec.name[:-1]} of {ROOT}: a backup "
                             f"never carries the break-glass principal of an instance")


def _scope(header: Header) -> frozenset[str] | None:
    """The key ids of a per-key archive (``scope`` ``{"kind": "keys", "keys": [...]}``),
    None for a full one; ArchiveInvalid for anything else."""
    scope = header.raw.get("scope")
    if scope == {"kind": "full"}:
        return None
    if (isinstance(scope, dict) and scope.get("kind") == "keys"
            and isinstance(scope.get("keys"), list) and scope["keys"]
            and all(isinstance(k, str) for k in scope["keys"])):
        return frozenset(scope["keys"])
    raise ArchiveInvalid("the archive's scope is malformed")
