"""The two errors an archive can raise (both ``invalid_argument``, HTTP 400): the archive
itself is refused, or what was given to open it (shares, custodian keys) does not."""

from __future__ import annotations

from keykeeper.errors import InvalidArgument

__all__ = ["ArchiveInvalid", "WrongBackupKey"]


class ArchiveInvalid(InvalidArgument):
    """The archive is truncated, corrupted, re-ordered, altered, or signed by a signer
    other than the one pinned (docs/backup-format.md, Verification)."""


class WrongBackupKey(InvalidArgument):
    """The shares or custodian keys given do not open this archive (wrong, too few, or
    of another backup)."""
