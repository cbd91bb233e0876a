"""Backup restore (issue 7 §2; docs/backup-format.md, Restore).

1. Authorize ``backup.restore``; open the archive's backup key (shares, or the key a
   client recovered with custodian private keys) and check it against the key check.
2. Trust the archive's maker: its signer must be this instance's own backup signing key
   or the signer the restorer pins (``signer``; FailedPrecondition otherwise, on every
   path: shares and custodian keys alike). Then verify the whole archive, writing
   nothing: structure, order, manifest, digests, the pinned signature and the MAC, and
   open every material.
3. In ONE transaction, by what the target is (:func:`not_empty_reason`, the one
   definition of an empty instance):

   - an EMPTY instance (a fresh one: no keys, no namespace beyond ``default``, no
     principal, no token beyond the init token, no role or grant beyond the built-in
     seed, no destruction receipt) gets everything: key data, and the identity and
     policy rows (principals, tokens, roles, grants, the approval and SoD policies),
     the archive's grants replacing the default ones;
   - a NON-EMPTY instance is refused unless forced (under dual control: the
     ``backup.restore`` approval, consumed once). A forced restore adds KEY DATA ONLY and
     never deletes anything: namespaces, keys and versions the target lacks are added
     (new namespaces with fresh KEKs of this instance); for a key the target has, its key
     row, labels, events and versions are kept as they are and only versions it lacks
     are added; a key whose name is taken here by another key is left out (``conflicts``).
     Identity and policy rows are never touched (``skipped``): whoever assembles an
     archive must not define principals, tokens, roles or grants here.

   Versions this instance knows as destroyed (erased rows, receipts) stay destroyed, with
   their own ``destroyed_at`` and no new event, unless ``restore_destroyed`` is also
   forced: their material comes back, each with a ``restore-version`` key event, and a
   ``backup.restore_destroyed`` audit record names the principal, request and approval.

A crash part-way leaves the transaction uncommitted: the database rolls it back (SQLite's
journal, PostgreSQL's WAL) and the server comes back with the store as it was before the
restore, which can simply be run again. Nothing half-restored is ever served: other
requests see the old store until the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import IO, Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from keykeeper.backup.errors import ArchiveInvalid, WrongBackupKey
from keykeeper.backup.format import ArchiveReader, Header
from keykeeper.backup.keys import fingerprint
from keykeeper.backup.verify import open_key, read_verified
from keykeeper.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from keykeeper.service.approvals import Approvals
from keykeeper.service.audit import Auditor
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.backup_export import AUDIT_TABLE, BackupSigner
from keykeeper.service.backup_target import not_empty_reason, read_target
from keykeeper.service.backup_writer import (
    RestoreOptions,
    RestoreResult,
    RestoreWriter,
    merge_summary,
)
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.lookup import KeyLookup
from keykeeper.store import backup_tables as bt
from keykeeper.store import schema
from keykeeper.store.approvals import ApprovalRepository

__all__ = ["BackupRestore", "RestoreOptions", "RestoreResult", "not_empty_reason"]

log = logging.getLogger("keykeeper.backup")

_USED = "used"


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
        self._writer = RestoreWriter(deps)

    def empty_reason(self) -> str | None:
        """Why this instance is not empty (:func:`not_empty_reason`), None when it is."""
        with self._d.reading() as conn:
            return not_empty_reason(conn)

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
        FailedPrecondition (not empty and not forced; a signer that is neither this
        instance's nor pinned), ApprovalRequired (202: a forced restore waits for
        approval), Sealed."""
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
        signer = self._trusted_signer(header, opts.signer)
        key = open_key(header, shares=opts.shares, backup_key=opts.backup_key)
        assert key is not None
        with open_archive() as stream:  # pass 1: everything verified, nothing written
            read_verified(stream, key=key, signer=signer, header=header)
        if opts.force:
            self._gate(ctx, header, opts, archive_sha256)
        keks: dict[str, bytes] = {}
        try:
            with self._d.transaction() as conn:
                if opts.force and opts.approval_id is not None:
                    self._consume(conn, ctx, opts.approval_id)
                known = read_target(conn, opts.force)
                try:
                    with open_archive() as stream:
                        result = self._writer.write(ctx, conn, stream, header, key, signer,
                                                    opts, known, keks)
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
            # On the request's context: the principal, request id and approval id.
            shown = result.restored_destroyed[:100]
            more = len(result.restored_destroyed) - len(shown)
            self._auditor.note("backup.restore_destroyed", reason="forced", ctx=ctx,
                               detail=f"backup {header.backup_id} (archive sha256 "
                                      f"{archive_sha256}) brought back "
                                      f"{len(result.restored_destroyed)} version(s) this "
                                      f"instance knew as destroyed, by {ctx.actor}: "
                                      + ", ".join(shown)
                                      + (f" and {more} more" if more else ""))
        log.warning("backup %s restored by %s%s: %s", header.backup_id, ctx.actor,
                    " (forced)" if opts.force else "", result.counts)
        return result

    def _audit_restored(self, ctx: RequestContext, result: RestoreResult,
                        digest: str) -> None:
        """After the commit: ``items`` (keys restored) on the request's own outcome record,
        and a ``backup.restored`` record with what was restored, from which archive, by
        whom (the request's records carry no counts)."""
        c = result.counts
        ctx.items = result.added.get("keys", 0)  # keys written: a forced restore adds only
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
                                   f"{len(result.restored_destroyed)} brought back"
                                   + merge_summary(result)))

    def _trusted_signer(self, header: Header, pinned: str | None) -> str:
        """The fingerprint the archive must be signed by: ``pinned``, else this instance's
        own backup signing key. FailedPrecondition (saying how to pin) for an archive
        signed by another key and not pinned: the signature and the MAC prove only that
        whoever held the shares finished the archive, not who made it."""
        if pinned is not None:
            return pinned
        own = self._signer.fingerprint()
        actual = fingerprint(header.signer_public)
        if actual != own:
            raise FailedPrecondition(
                f"the archive is signed by {actual}, not by this instance's backup signing "
                f"key ({own}): if you trust the instance that made it, pin its signer: "
                "--signer FILE|FINGERPRINT (REST: \"signer\"), where FILE is the PEM "
                "`keykeeper backup signing-key --out FILE` wrote on that instance, or give "
                "the fingerprint above once you have checked it with that instance's "
                "operators")
        return own

    # -- dual control -----------------------------------------------------------------------
    def _gate(self, ctx: RequestContext, header: Header, opts: RestoreOptions,
              digest: str) -> None:
        arguments = {"backup_id": header.backup_id, "archive_sha256": digest, "force": True,
                     "restore_destroyed": opts.restore_destroyed}
        if opts.approval_id is None:
            self._approvals.gate(ctx, "backup.restore", arguments,
                                 summary=f"restore backup {header.backup_id} into this "
                                         "instance (if not empty: its missing key data "
                                         "only)"
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
