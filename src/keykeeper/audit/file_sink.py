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
  it, so a rotated file ends signed (unless sealed, when no checkpoint can be made); when
  the batch that crosses the limit already ends with a checkpoint, it rotates at once.
* **Deleted or replaced file.** Before each batch the open file is compared with the
  path (``st_nlink`` of the descriptor, device and inode of the path, not following a
  symbolic link). If the file was deleted, moved or replaced, the sink raises an alert and
  opens the path afresh -- the new file before the old descriptor is closed -- and the
  chain continues there, so the loss shows as missing records and the alert.
* **Only a regular file.** The path is opened with ``O_NOFOLLOW | O_NONBLOCK`` and kept
  only if ``fstat`` says it is a regular file: a symbolic link (to ``/dev/null``, say), a
  FIFO, a device, a socket or a directory is refused, and opening never blocks (a FIFO
  without a reader fails at once). While the path cannot be opened, the sink holds no
  descriptor at all -- never the number of a closed one, which the process reuses for
  client sockets -- every batch fails (so requests answer 503: fail closed), the sink
  alerts (``unwritable``) and tries again before the next batch; once the path can be
  opened, the chain continues in a fresh file there (``reopened``).
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
    "NotRegularFile",
    "Slot",
    "Tail",
    "TailUnreadable",
    "acquire_slot",
    "node_files",
    "open_audit_file",
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
    return sorted(p for p in path.parent.iterdir()
                  if pattern.match(p.name) and p.is_file() and not p.is_symlink())


class NotRegularFile(OSError):
    """The audit path is not a regular file (a symbolic link, FIFO, device, directory)."""


# Never follow a symbolic link, never block (a FIFO without a reader fails with ENXIO at
# once instead of hanging the writer thread), never become a controlling terminal.
_OPEN_FLAGS = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
               | os.O_NOCTTY | os.O_CLOEXEC)


def _what(path: Path) -> str | None:
    """What ``path`` is, if not a regular file (``a directory``, ...); None otherwise."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return None


def open_audit_file(path: Path) -> tuple[int, os.stat_result]:
    """Open the audit file ``path`` for appending (created with mode 0600) and return the
    descriptor and its ``fstat``. Only a regular file is accepted, never through a
    symbolic link, and opening never blocks. Raises OSError (NotRegularFile for a path that
    is not a regular file) with a message naming the path and the reason."""
    try:
        fd = os.open(path, _OPEN_FLAGS, 0o600)
    except OSError as exc:
        what = _what(path)
        if what is not None:
            raise NotRegularFile(exc.errno, f"the audit file {path} is {what}, not a "
                                 "regular file") from None
        raise OSError(exc.errno, f"cannot open the audit file {path}: "
                      f"{exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, f"the audit file {path} is "
                                 f"{_what(path) or 'not a regular file'}, not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _ends_mid_line(path: Path, size: int) -> bool:
    """Whether the file at ``path`` (``size`` bytes) ends without a newline."""
    if size == 0:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        return os.pread(fd, 1, size - 1) != b"\n"
    except OSError:
        return True
    finally:
        os.close(fd)


class FileAuditSink:
    """Appends batches of records to one file (``O_APPEND``, one ``write`` per batch).

    ``on_alert(kind, detail)`` reports trouble (``deleted``, ``replaced``, ``unwritable``,
    ``reopened``, ``torn_tail``, ``dropped``); ``request_checkpoint()`` asks for a
    checkpoint record before a rotation and answers whether one is coming. ``slot`` is
    released on :meth:`close`. Raises OSError if ``path`` cannot be opened (see
    :func:`open_audit_file`).

    ``_fd`` is the open file's descriptor, or None while there is none: a descriptor is
    set to None *before* it is closed, so a closed number (which the process reuses for
    client sockets) is never written to or closed again.
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
        self._pending = b""              # unwritten bytes of failed batches (a full disk)
        self._pending_mid_line = False   # ... which start in the middle of a line
        self._fd: int | None = None
        self._identity = (0, 0)
        self._size = 0
        self._unusable: str | None = None   # why the path cannot be opened (alerted once)
        self._failed_opens = 0
        self._use(*open_audit_file(path))

    # -- opening, tail ----------------------------------------------------------------------
    def _use(self, fd: int, st: os.stat_result) -> None:
        """Write to ``fd`` (the file at the path, just opened) from now on."""
        self._fd = fd
        self._identity = (st.st_dev, st.st_ino)
        self._size = st.st_size
        self._needs_newline = _ends_mid_line(self.path, st.st_size)
        if self._pending:
            # Bytes a failed write left for the previous file: whole records only (the
            # rest of a line begun there would be garbage here), and no owed newline.
            pending = self._pending
            if self._pending_mid_line:
                cut = pending.find(b"\n")
                pending = pending[cut + 1:] if cut >= 0 else b""
            self._pending, self._pending_mid_line = pending.lstrip(b"\n"), False

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
            if not stat.S_ISREG(path.lstat().st_mode):
                return None  # not a regular file (the sink refuses it): nothing to continue
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

    def _changed(self, fd: int) -> str | None:
        """``deleted`` or ``replaced`` if the file open as ``fd`` is no longer at the path
        (a symbolic link put in its place counts as a replacement); None if it is."""
        try:
            if os.fstat(fd).st_nlink == 0:
                return "deleted"
            st = os.lstat(self.path)
        except FileNotFoundError:
            return "deleted"
        return None if (st.st_dev, st.st_ino) == self._identity else "replaced"

    def _close_fd(self) -> None:
        """Forget the descriptor, then close it (in that order: never keep a closed one)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _check_file(self) -> None:
        """Before each batch: notice a deleted, moved or replaced file and open the path
        afresh (the new file first, then the old descriptor is closed); while there is no
        file, try to open the path. Raises OSError -- the batch fails, so requests answer
        503 -- while the path cannot be opened; the next batch tries again."""
        old = self._fd
        kind = self._changed(old) if old is not None else None
        if old is not None and kind is None:
            return
        try:
            fd, st = open_audit_file(self.path)
        except OSError as exc:
            self._close_fd()
            if kind is not None:
                self._alert(kind, f"the audit file {self.path} was {kind} (or moved away) "
                            "while in use, and the path cannot be opened again")
            self._failed_opens += 1
            if self._unusable is None:
                self._unusable = str(exc.strerror or exc)
                self._alert("unwritable", f"{exc.strerror or exc}: no audit record can be "
                            "written to it, so requests are refused (503) until it can be "
                            "opened again (tried before every batch)")
            raise
        self._close_fd()
        self._use(fd, st)
        if kind is not None:
            self._alert(kind, f"the audit file {self.path} was {kind} (or moved away) "
                        "while in use; writing continues in a fresh file at that path")
        else:  # after a time without a file
            self._alert("reopened", f"the audit file {self.path} can be written again "
                        f"(after {self._failed_opens} refused batch(es): "
                        f"{self._unusable}); the chain continues in it, and the records "
                        "of the refused batches are missing from it")
        self._unusable, self._failed_opens = None, 0

    def _write_all(self, data: bytes) -> None:
        """Write ``data`` (and what a failed write left); on OSError keep the unwritten rest
        (up to MAX_PENDING bytes) for the next batch, so a disk that fills up and recovers
        leaves the file whole, only late."""
        fd = self._fd
        if fd is None:
            raise OSError(errno.EBADF, f"the audit file {self.path} is not open")
        # A newline owed to a torn last line comes first; then what failed writes left.
        prefix = b"\n" if self._needs_newline else b""
        mid_line = bool(prefix) or self._pending_mid_line  # the file ends inside a line
        data = prefix + self._pending + data
        self._needs_newline, self._pending = False, b""
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                self._size += written
                view = view[written:]
        except OSError:
            done = len(data) - len(view)
            if done:
                mid_line = data[done - 1:done] != b"\n"
            if len(view) <= MAX_PENDING:
                self._pending, self._pending_mid_line = bytes(view), mid_line
            else:
                self._needs_newline = mid_line
                self._pending_mid_line = False
                self._alert("dropped", f"{len(view)} bytes of audit records could not be "
                            f"written to {self.path} and were dropped")
            raise
        self._pending_mid_line = False

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
        if (self.max_bytes and self._size >= self.max_bytes
                and not self._rotate_pending):
            if entries and entries[-1].record.operation == CHECKPOINT:
                self._rotate()  # the file already ends signed: no checkpoint to wait for
            elif self._request_checkpoint is not None and self._request_checkpoint():
                self._rotate_pending = True
            else:
                self._rotate()

    def _append(self, entries: Sequence[Entry]) -> None:
        self._write_all(b"".join([e.line + b"\n" for e in entries]))

    def _rotate(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.path.with_name(f"{self.path.stem}.{stamp}{self.path.suffix}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.stem}.{stamp}-{n}{self.path.suffix}")
            n += 1
        os.rename(self.path, target)
        self._rotate_pending = False
        try:
            fd, st = open_audit_file(self.path)
        except OSError as exc:
            # The next batch tries again (and fails, alerted, until the path can be opened).
            self._close_fd()
            self._unusable = str(exc.strerror or exc)
            self._alert("unwritable", f"after rotating to {target.name}: "
                        f"{self._unusable}; requests are refused (503) until it can be "
                        "opened")
            return
        self._close_fd()
        self._use(fd, st)

    def close(self) -> None:
        self._close_fd()
        if self.slot is not None:
            self.slot.release()
