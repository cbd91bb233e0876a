"""The audit file: JSON lines, one hash chain per server process, rotation by size.

* **Slots.** Each server process takes the first free *slot*: an exclusive ``flock`` on
  ``<file>.slot<N>.lock``, held while it runs. Slot 0 writes the configured file, slot N
  ``<stem>.<N><suffix>`` (``audit.1.log``), each its own chain, so worker processes never
  interleave lines of different chains and a restarted worker continues its slot's chain.
* **Continuation.** :meth:`FileAuditSink.tail` reads the last record of the file (or of
  its newest rotated file), so the chain continues with the next ``seq`` and ``prev``.
  A last line cut short by a crash is terminated with a newline first (the verifier
  reports it as a torn write).
* **Rotation.** Past ``max_bytes`` the file is renamed ``<stem>.<UTC time><suffix>``
  (``audit.20261129T105517123456Z.log``) and a fresh one opened; the chain simply
  continues in it. Before renaming, the sink asks for a checkpoint and rotates right after
  it, so a rotated file ends signed (unless sealed, when no checkpoint can be made).
* **Deleted or replaced file.** Before each batch the open file is compared with the
  path (``st_nlink`` of the descriptor, device and inode of the path). If the file was
  deleted, moved or replaced, the sink raises an alert and reopens the path -- a fresh file
  -- and the chain continues there, so the loss shows as missing records and the alert.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import msgspec

from keykeeper.audit.records import CHECKPOINT
from keykeeper.audit.verify import line_hash
from keykeeper.audit.writer import Entry

__all__ = [
    "FileAuditSink",
    "Slot",
    "Tail",
    "TailUnreadable",
    "acquire_slot",
    "node_files",
    "rotated_files",
    "slot_path",
]

TAIL_READ = 1 << 20  # bytes read back from the end to find the last record
MAX_PENDING = 64 << 20  # bytes kept for a retry after a failed write (a full disk)


class TailUnreadable(Exception):
    """The file's last record cannot be read: the chain cannot continue from it."""


class Tail(NamedTuple):
    """The last record of a file: its chain, seq and line hash; ``checkpoint`` if it is one."""

    chain: str
    seq: int
    hash: str
    checkpoint: bool
    file: Path


class _TailRecord(msgspec.Struct):
    chain: str
    seq: int
    operation: str


class Slot(NamedTuple):
    number: int
    fd: int           # the locked file; closing it frees the slot

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def acquire_slot(path: Path, limit: int = 256) -> Slot:
    """Lock the first free slot of the audit file ``path`` for this process.
    Raises OSError if all ``limit`` slots are taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for number in range(limit):
        lock = path.with_name(f"{path.name}.slot{number}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                continue
            raise
        return Slot(number, fd)
    raise OSError(errno.EBUSY, f"all {limit} audit slots of {path} are in use")


def slot_path(path: Path, number: int) -> Path:
    """The file slot ``number`` writes: ``path`` itself for slot 0, else ``<stem>.<N><suffix>``."""
    return path if number == 0 else path.with_name(f"{path.stem}.{number}{path.suffix}")


def rotated_files(path: Path) -> list[Path]:
    """The rotated files of ``path`` (``<stem>.<UTC time><suffix>``), oldest first."""
    pattern = re.compile(re.escape(path.stem) + r"\.\d{8}T\d{12}Z(-\d+)?" +
                         re.escape(path.suffix) + r"\Z")
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir() if pattern.match(p.name))


def node_files(path: Path) -> list[Path]:
    """Every audit file of the node whose audit file is ``path``: each slot's file and
    rotated files (``audit.log``, ``audit.1.log``, ``audit.<time>.log``, ...), by name."""
    pattern = re.compile(re.escape(path.stem) + r"(\.\d{1,3})?(\.\d{8}T\d{12}Z(-\d+)?)?" +
                         re.escape(path.suffix) + r"\Z")
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir() if pattern.match(p.name) and p.is_file())


class FileAuditSink:
    """Appends batches of records to one file (``O_APPEND``, one ``write`` per batch).

    ``on_alert(kind, detail)`` reports trouble (``deleted``, ``replaced``, ``torn_tail``);
    ``request_checkpoint()`` asks for a checkpoint record before a rotation and answers
    whether one is coming. ``slot`` is released on :meth:`close`.
    """

    def __init__(self, path: Path, *, max_bytes: int = 0,
                 on_alert: Callable[[str, str], None] | None = None,
                 request_checkpoint: Callable[[], bool] | None = None,
                 slot: Slot | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self.slot = slot
        self._on_alert = on_alert
        self._request_checkpoint = request_checkpoint
        self._rotate_pending = False
        self._needs_newline = False
        self._pending = b""
        self._fd = -1
        self._open()

    # -- opening, tail ----------------------------------------------------------------------
    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        st = os.fstat(self._fd)
        self._identity = (st.st_dev, st.st_ino)
        self._size = st.st_size
        self._regular = stat.S_ISREG(st.st_mode)  # a FIFO is never rotated

    def tail(self) -> Tail | None:
        """The last record of the file, or of the newest rotated file if this one is empty;
        None if there is none. Raises TailUnreadable if the last line is not a record."""
        for candidate in (self.path, *reversed(rotated_files(self.path))):
            found = self._tail_of(candidate)
            if found is not None:
                return found
        return None

    def _tail_of(self, path: Path) -> Tail | None:
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                return None  # a FIFO or a device (a log shipper reads it): nothing to continue
            with path.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                if size == 0:
                    return None
                start = max(0, size - TAIL_READ)
                fh.seek(start)
                data = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TailUnreadable(f"cannot read {path}: {exc.strerror}") from None
        if not data.endswith(b"\n"):
            # A write cut short (crash, full disk): end that line before appending, and
            # continue from the last complete record.
            if path == self.path:
                self._needs_newline = True
                self._alert("torn_tail", f"the last line of {path} is incomplete (a torn "
                            "write); the chain continues from the record before it")
            cut = data.rfind(b"\n")
            data = data[:cut + 1] if cut >= 0 else b""
        lines = data.splitlines()
        if not lines or (start > 0 and len(lines) == 1):
            raise TailUnreadable(f"no complete record at the end of {path}")
        last = lines[-1]
        try:
            rec = msgspec.json.decode(last, type=_TailRecord)
        except msgspec.DecodeError as exc:
            raise TailUnreadable(f"the last line of {path} is not an audit record "
                                 f"({exc})") from None
        return Tail(rec.chain, rec.seq, line_hash(last), rec.operation == CHECKPOINT, path)

    # -- writing ----------------------------------------------------------------------------
    def _alert(self, kind: str, detail: str) -> None:
        if self._on_alert is not None:
            self._on_alert(kind, detail)

    def _check_file(self) -> None:
        """Notice a deleted, moved or replaced file and reopen the path."""
        kind = None
        try:
            if os.fstat(self._fd).st_nlink == 0:
                kind = "deleted"
            else:
                st = os.stat(self.path)
                if (st.st_dev, st.st_ino) != self._identity:
                    kind = "replaced"
        except FileNotFoundError:
            kind = "deleted"
        if kind is None:
            return
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._open()
        self._needs_newline = self._size > 0
        self._alert(kind, f"the audit file {self.path} was {kind} (or moved away) while "
                    "in use; writing continues in a fresh file at that path")

    def _write_all(self, data: bytes) -> None:
        """Write ``data`` (and what a failed write left); on OSError keep the unwritten rest
        (up to MAX_PENDING bytes) for the next batch, so a disk that fills up and recovers
        leaves the file whole, only late."""
        if self._pending:
            data, self._pending = self._pending + data, b""
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                self._size += written
                view = view[written:]
        except OSError:
            if len(view) <= MAX_PENDING:
                self._pending = bytes(view)
            else:
                self._needs_newline = len(view) != len(data)
                self._alert("dropped", f"{len(view)} bytes of audit records could not be "
                            f"written to {self.path} and were dropped")
            raise

    def write_batch(self, entries: Sequence[Entry]) -> None:
        self._check_file()
        if self._rotate_pending:
            for i, entry in enumerate(entries):
                if entry.record.operation == CHECKPOINT:
                    self._append(entries[:i + 1])
                    self._rotate()
                    entries = entries[i + 1:]
                    break
        if entries:
            self._append(entries)
        if (self.max_bytes and self._regular and self._size >= self.max_bytes
                and not self._rotate_pending):
            if self._request_checkpoint is not None and self._request_checkpoint():
                self._rotate_pending = True
            else:
                self._rotate()

    def _append(self, entries: Sequence[Entry]) -> None:
        data = b"".join([e.line + b"\n" for e in entries])
        if self._needs_newline:
            data = b"\n" + data
        self._write_all(data)
        self._needs_newline = False

    def _rotate(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.path.with_name(f"{self.path.stem}.{stamp}{self.path.suffix}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.stem}.{stamp}-{n}{self.path.suffix}")
            n += 1
        os.rename(self.path, target)
        os.close(self._fd)
        self._open()
        self._rotate_pending = False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)
        if self.slot is not None:
            self.slot.release()
