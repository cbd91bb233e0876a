"""Crash-safe file writes for archives: a temporary file beside the target, fsynced and
renamed into place, then the directory fsynced (POSIX rename is atomic; the directory
fsync makes the rename itself survive a crash). Used by the SDK, the CLI and the
scheduled backups, so an interrupted write never leaves a file that looks complete.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

__all__ = ["fsync_dir", "write_atomically"]


def fsync_dir(directory: Path) -> None:
    """fsync ``directory`` so the renames and unlinks in it are durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, write: Any) -> Any:
    """``write(stream)`` into a temporary file beside ``path`` (mode 0600), fsynced and
    renamed into place, then the directory fsynced; on any exception the temporary file
    is removed and ``path`` is untouched. Returns what ``write`` returns."""
    target = Path(os.path.realpath(path))
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as stream:
            result = write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)
    return result
