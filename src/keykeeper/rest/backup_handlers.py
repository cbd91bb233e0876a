"""Handlers of the backup routes (rest/backup_routes.py): translate only. Every check
happens in service/backup_export.py and service/backup_restore.py; the streaming of the
archive in and out is rest/backup_stream.py's."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO

from keykeeper.backup.keys import load_signer
from keykeeper.errors import InvalidArgument, Unavailable
from keykeeper.rest import backup_schemas as s
from keykeeper.service.backup import Backups
from keykeeper.service.backup_export import BackupPlan
from keykeeper.service.backup_restore import RestoreOptions
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services

__all__ = ["RestoreUpload", "create", "restore", "signing_key"]

Params = Mapping[str, str]


def _backups(svc: Services) -> Backups:
    if svc.backups is None:
        raise Unavailable("backups are not available on this server")
    return svc.backups


def create(svc: Services, ctx: RequestContext, p: Params, body: s.BackupRequest) -> BackupPlan:
    """The checked plan of a backup; rest/backup_stream.py streams it."""
    return _backups(svc).create.plan(
        ctx, shares=body.shares, threshold=body.threshold,
        custodian_keys=body.custodian_keys, custodian_threshold=body.custodian_threshold,
        keys=body.keys)


def started(plan: BackupPlan) -> s.BackupStarted:
    """The first line of the backup answer."""
    custody = plan.header["custody"]
    custodians = custody.get("custodians") or {}
    split = custody.get("shares") or {}
    return s.BackupStarted(backup_id=plan.backup_id, signer=plan.header["signer"]["fingerprint"],
                           scope=plan.header["scope"]["kind"], shares=list(plan.shares),
                           custodians=int(custodians.get("count") or 0),
                           custodian_threshold=custodians.get("threshold"),
                           threshold=split.get("threshold"))


@dataclass(repr=False)
class RestoreUpload:
    """The decoded options line and the spooled archive (``open_archive()`` answers a new
    stream over it from the start each time) with its SHA-256 (hex)."""

    options: s.RestoreRequest
    open_archive: Callable[[], IO[bytes]]
    sha256: str


def _options(body: s.RestoreRequest) -> RestoreOptions:
    key = None
    if body.backup_key is not None:
        try:
            key = base64.b64decode(body.backup_key, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument("backup_key is not valid base64") from None
        if len(key) != 32:
            raise InvalidArgument("backup_key must be 32 bytes")
    signer = load_signer(body.signer) if body.signer is not None else None
    return RestoreOptions(shares=tuple(body.shares), backup_key=key, signer=signer,
                          force=body.force, restore_destroyed=body.restore_destroyed,
                          approval_id=body.approval_id)


def restore(svc: Services, ctx: RequestContext, p: Params,
            body: RestoreUpload) -> s.RestoreResponse:
    result = _backups(svc).restore.restore(ctx, body.open_archive, _options(body.options),
                                           archive_sha256=body.sha256)
    return s.RestoreResponse(backup_id=result.backup_id, counts=result.counts,
                             forced=result.forced, archive_sha256=body.sha256,
                             kept_destroyed=result.kept_destroyed,
                             restored_destroyed=result.restored_destroyed,
                             added=result.added, kept=result.kept, skipped=result.skipped,
                             conflicts=result.conflicts,
                             identity_restored=result.identity_restored)


def signing_key(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.SigningKey:
    pem, fingerprint = _backups(svc).create.signing_key(ctx)
    return s.SigningKey(public_key=pem, fingerprint=fingerprint)
