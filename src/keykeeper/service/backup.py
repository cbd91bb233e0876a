"""The backup service as one object (service/backup_export.py makes archives,
service/backup_restore.py restores them); built by build_services."""

from __future__ import annotations

from dataclasses import dataclass

from keykeeper.service.approvals import Approvals
from keykeeper.service.audit import Auditor
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.backup_export import BackupCreate, BackupSigner
from keykeeper.service.backup_restore import BackupRestore
from keykeeper.service.deps import Deps
from keykeeper.service.lookup import KeyLookup

__all__ = ["Backups", "build_backups"]


@dataclass(frozen=True)
class Backups:
    create: BackupCreate
    restore: BackupRestore
    signer: BackupSigner


def build_backups(deps: Deps, authz: Authorizer, auditor: Auditor, approvals: Approvals,
                  lookup: KeyLookup) -> Backups:
    """The backup service; registers the executor of an approved ``backup.restore``."""
    create = BackupCreate(deps, authz, auditor)
    restore = BackupRestore(deps, authz, auditor, approvals, lookup, create.signer)
    approvals.register("backup.restore", restore.execute_approved)
    return Backups(create=create, restore=restore, signer=create.signer)
