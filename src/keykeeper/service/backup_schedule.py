"""Scheduled backups (issue 7 §1): the scheduler's ``backup`` job writes an archive of the
whole store into a directory and keeps the newest ``retain`` of them.

Shamir shares are shown once to whoever asks for a backup, and a scheduled job has nobody
to show them to: a scheduled archive is protected for custodian public keys only
(``KEYKEEPER_BACKUP_CUSTODIANS``, RSA-4096 or X25519 + ML-KEM-768 PEM files; any
``KEYKEEPER_BACKUP_THRESHOLD`` of them open it, 2 by default; docs/backup-format.md,
Custody). The threshold may not be below ``KEYKEEPER_BACKUP_MIN_QUORUM`` (config.py
refuses to start; a run would be refused by ``BackupCreate.plan`` as any backup is).

Each run (on the scheduler's leader, while unsealed):

0. skips, with a note ("nothing to back up"), when the store is empty (a fresh instance:
   service/backup_target.py ``not_empty_reason``): a recovery node started before its
   restore must not write empty archives that retention would keep in place of good ones;
1. streams the archive (service/backup_export.py) into ``.<name>.partial`` in the
   directory (mode 0600), fsyncs it, renames it to
   ``keykeeper-sched-<marker>-<UTC time>-<backup id>.kkbackup`` and fsyncs the directory:
   a run cut off (crash, kill -9, full disk) leaves at most a ``.partial`` file, which
   never has the final name and never verifies. ``<marker>``: the first 12 hex digits of
   this instance's backup signing-key fingerprint (the same on every node of the
   instance, another on any other instance);
2. verifies the new archive (structure, manifest, digests, signature;
   backup/verify.py) before anything is deleted;
3. deletes the oldest archives beyond ``retain`` among those THIS schedule wrote: only
   names with this instance's marker are counted or deleted, never an archive copied in
   by hand, another instance's (a recovery node pointed at the lost instance's
   directory), or one named by an older version; ``.partial`` files of this marker
   older than a day (left by a crash) are removed, younger ones (a run in progress) not.

Every run is audited: ``backup.create`` (principal and interface ``scheduler``, ``items``
the keys archived) and a ``backup.scheduled`` note naming the file, its SHA-256 and what
retention deleted (or why the run was skipped); the scheduler adds its own
``scheduler.backup`` run record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from keykeeper.authz.model import Principal
from keykeeper.backup.custodians import load_public_key
from keykeeper.backup.files import fsync_dir
from keykeeper.backup.verify import verify_archive
from keykeeper.errors import InvalidArgument, KeykeeperError
from keykeeper.scheduler import Job, JobResult
from keykeeper.service.audit import Auditor
from keykeeper.service.backup import Backups
from keykeeper.service.context import RequestContext
from keykeeper.service.rotation import PRINCIPAL, error_code

__all__ = ["EMPTY_NOTE", "JOB", "MIN_INTERVAL_SECONDS", "ROLE", "BackupSchedule",
           "ScheduledBackups", "archive_name", "marker"]

log = logging.getLogger("keykeeper.backup")

JOB = "backup"
#: The built-in role the job acts with (authz/builtin.py: it holds ``backup.create``).
ROLE = "key-custodian"
SUFFIX = ".kkbackup"
PARTIAL = ".partial"
STALE_PARTIAL_SECONDS = 86_400
MAX_RETAIN = 10_000
MIN_INTERVAL_SECONDS = 60
EMPTY_NOTE = "nothing to back up"


def marker(signer_fingerprint: str) -> str:
    """The mark of one instance's scheduled archives: ``sched-`` and the first 12 hex
    digits of its backup signing-key fingerprint (``sha256:<hex>``)."""
    return "sched-" + signer_fingerprint.removeprefix("sha256:")[:12]


def archive_name(now: datetime, backup_id: str, mark: str) -> str:
    """``keykeeper-<mark>-<YYYYmmddTHHMMSSZ>-<backup id>.kkbackup``: sorts by time."""
    return f"keykeeper-{mark}-{now.strftime('%Y%m%dT%H%M%SZ')}-{backup_id}{SUFFIX}"


def _own(mark: str) -> re.Pattern[str]:
    """The names this instance's schedule writes (and only those)."""
    return re.compile(rf"^keykeeper-{re.escape(mark)}-\d{{8}}T\d{{6}}Z-bk-[0-9a-f]{{16}}"
                      rf"\.kkbackup$")


@dataclass(frozen=True, repr=False)
class BackupSchedule:
    """The job's settings: ``directory``; ``interval_seconds`` between runs; ``retain``
    complete archives kept (>= 1); ``custodians``: the PEM public keys; ``threshold``:
    how many custodians open an archive (1..len(custodians))."""

    directory: Path
    interval_seconds: float
    retain: int
    custodians: tuple[bytes, ...]
    threshold: int
    files: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        return (f"BackupSchedule({self.directory}, every {self.interval_seconds:g} s, retain "
                f"{self.retain}, {self.threshold} of {len(self.custodians)} custodians)")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BackupSchedule | None:
        """From ``KEYKEEPER_BACKUP_DIR`` (unset: no scheduled backups),
        ``KEYKEEPER_BACKUP_INTERVAL`` (seconds or e.g. ``1d``; default 1 day),
        ``KEYKEEPER_BACKUP_RETAIN`` (default 7), ``KEYKEEPER_BACKUP_CUSTODIANS`` (PEM
        files, comma-separated; required) and ``KEYKEEPER_BACKUP_THRESHOLD`` (default 2, or
        1 with a single custodian file). InvalidArgument naming the setting otherwise."""
        from keykeeper.domain.durations import parse_duration
        directory = (env.get("KEYKEEPER_BACKUP_DIR") or "").strip()
        if not directory:
            return None
        interval = parse_duration(env.get("KEYKEEPER_BACKUP_INTERVAL") or "1d",
                                  what="KEYKEEPER_BACKUP_INTERVAL")
        if interval < MIN_INTERVAL_SECONDS:
            raise InvalidArgument(f"KEYKEEPER_BACKUP_INTERVAL must be at least "
                                  f"{MIN_INTERVAL_SECONDS} seconds")
        retain_text = (env.get("KEYKEEPER_BACKUP_RETAIN") or "7").strip()
        if not retain_text.isdigit() or not 1 <= int(retain_text) <= MAX_RETAIN:
            raise InvalidArgument(f"KEYKEEPER_BACKUP_RETAIN must be a count of archives "
                                  f"1..{MAX_RETAIN}, got '{retain_text[:32]}'")
        files = tuple(p.strip() for p in (env.get("KEYKEEPER_BACKUP_CUSTODIANS") or "")
                      .split(",") if p.strip())
        if not files:
            raise InvalidArgument("KEYKEEPER_BACKUP_CUSTODIANS must name the custodians' "
                                  "public key files (comma-separated): a scheduled backup "
                                  "cannot show Shamir shares to anyone")
        pems = []
        for name in files:
            try:
                pems.append(Path(name).read_bytes())
            except OSError as exc:
                raise InvalidArgument(f"KEYKEEPER_BACKUP_CUSTODIANS: cannot read '{name}' "
                                      f"({exc.strerror})") from None
            try:
                load_public_key(pems[-1])
            except KeykeeperError as exc:
                raise InvalidArgument(f"KEYKEEPER_BACKUP_CUSTODIANS: '{name}': "
                                      f"{exc}") from None
        default = "1" if len(files) == 1 else "2"
        threshold_text = (env.get("KEYKEEPER_BACKUP_THRESHOLD") or default).strip()
        if not threshold_text.isdigit() or not 1 <= int(threshold_text) <= len(files):
            raise InvalidArgument(f"KEYKEEPER_BACKUP_THRESHOLD must be 1..{len(files)} (the "
                                  f"number of custodian files), got '{threshold_text[:32]}'")
        return cls(Path(directory), float(interval), int(retain_text), tuple(pems),
                   int(threshold_text), files)


class ScheduledBackups:
    """The ``backup`` job: :meth:`run` is ``Job.run``; :meth:`job` the Job itself."""

    def __init__(self, backups: Backups, schedule: BackupSchedule,
                 auditor: Auditor | None = None) -> None:
        self._b = backups
        self.schedule = schedule
        self._auditor = auditor

    def job(self) -> Job:
        return Job(JOB, self.schedule.interval_seconds, self.run)

    def _ctx(self) -> RequestContext:
        return RequestContext(interface="scheduler",
                              principal=Principal(PRINCIPAL, roles=(ROLE,)))

    def run(self, now: datetime) -> JobResult:
        """One scheduled backup, then retention; skipped (nothing written or deleted) when
        the store is empty. Raises (the scheduler records the run as an ``error``) when
        the archive cannot be made; nothing is deleted then."""
        ctx = self._ctx()
        empty = self._b.restore.empty_reason() is None
        if empty:
            if self._auditor is not None:
                self._auditor.note("backup.scheduled", detail=(
                    f"skipped: {EMPTY_NOTE} (the store is empty: no keys, namespaces, "
                    f"principals or grants beyond a fresh instance's); nothing written to "
                    f"or deleted from {self.schedule.directory}"))
            log.info("scheduled backup skipped: %s (empty store)", EMPTY_NOTE)
            return JobResult(0, 0, f"skipped: {EMPTY_NOTE} (empty store)")
        try:
            path, digest, keys = self._write(ctx, now)
        except Exception as exc:
            self._audit(ctx, "error", error_code(exc))
            raise
        ctx.items = keys
        self._audit(ctx, "success", None)
        deleted = self._retain(keep=path)
        if self._auditor is not None:
            self._auditor.note("backup.scheduled", detail=(
                f"{path.name} ({keys} keys, sha256 {digest}) written to "
                f"{self.schedule.directory}; retention (keep {self.schedule.retain}) deleted "
                + (", ".join(deleted) if deleted else "nothing")))
        log.info("scheduled backup %s written (%d keys); %d old archive(s) deleted",
                 path.name, keys, len(deleted))
        return JobResult(1, 0, f"{path.name}, {len(deleted)} deleted")

    def _audit(self, ctx: RequestContext, outcome: str, code: str | None) -> None:
        if self._auditor is not None:
            self._auditor.record(ctx, "backup.create", outcome, code)

    def _write(self, ctx: RequestContext, now: datetime) -> tuple[Path, str, int]:
        s = self.schedule
        plan = self._b.create.plan(ctx, custodian_keys=list(s.custodians),
                                   custodian_threshold=s.threshold)
        s.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = s.directory / archive_name(now, plan.backup_id, self._mark())
        partial = s.directory / f".{final.name}{PARTIAL}"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in self._b.create.stream(ctx, plan):
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            verify_archive(lambda: partial.open("rb"),
                           signer=self._b.signer.fingerprint())
            os.replace(partial, final)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        fsync_dir(s.directory)
        return final, plan.digest.hexdigest(), plan.counts.get("keys", 0)

    def _mark(self) -> str:
        return marker(self._b.signer.fingerprint())

    def _retain(self, keep: Path) -> list[str]:
        """Delete the oldest archives this instance's schedule wrote beyond ``retain``
        (never ``keep``, never a partial, never a file of another name) and its partials
        older than a day; the names deleted."""
        directory = self.schedule.directory
        mark = self._mark()
        own = _own(mark)
        complete = sorted(p for p in directory.iterdir() if own.match(p.name))
        doomed = [p for p in complete[:max(0, len(complete) - self.schedule.retain)]
                  if p != keep]
        deleted = []
        for p in doomed:
            try:
                p.unlink()
                deleted.append(p.name)
            except OSError as exc:
                log.warning("backup retention: cannot delete %s: %s", p.name, exc.strerror)
        cutoff = time.time() - STALE_PARTIAL_SECONDS
        for p in directory.glob(f".keykeeper-{mark}-*{SUFFIX}{PARTIAL}"):
            with contextlib.suppress(OSError):
                if p.stat().st_mtime < cutoff:
                    p.unlink()
                    deleted.append(p.name)
        if deleted:
            fsync_dir(directory)
        return deleted
