"""Where a command's output file goes: a regular file (or a new one) is written to a
temporary file beside it, fsynced, and renamed into place (the directory fsynced after)
only when the command succeeds; a symlink is followed to its target first; anything else
that exists (a device such as /dev/null or /dev/stdout's target, a FIFO, a socket) is
written in place -- it cannot be replaced, and must never be swapped for a regular file."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from keykeeper.backup.files import fsync_dir

__all__ = ["output_file"]


@contextmanager
def output_file(out: Path, *, binary: bool) -> Iterator[IO[Any]]:
    """An output stream for ``out`` (see the module docstring). The replacement keeps an
    existing file's permission bits, and a new file gets 0600; on an exception the
    temporary file is removed and ``out`` is left as it was."""
    target = Path(os.path.realpath(out))  # a symlink: its target (the link stays)
    try:
        mode: int | None = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        with _open(str(target), binary) as stream:
            yield stream
        return
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        if mode is not None:
            os.chmod(tmp, stat.S_IMODE(mode))
        with _open(fd, binary) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)  # the rename itself survives a crash




def _open(file: str | int, binary: bool) -> IO[Any]:
    if binary:
        return open(file, "wb")
    return open(file, "w", encoding="utf-8", newline="\n")
