"""Scheduled backups (service/backup_schedule.py): the scheduler's ``backup`` job driven by
the injected clock, on both backends: archives for custodian public keys only, written
atomically, verified, retention by count (never a partial), audited; and its settings."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keykeeper.audit.records import AuditRecord
from keykeeper.backup import (
    ArchiveReader,
    WrongBackupKey,
    generate_custodian_key,
    load_private_keys,
    open_key,
    verify_archive,
)
from keykeeper.errors import InvalidArgument
from keykeeper.scheduler import Scheduler
from keykeeper.service.backup_restore import RestoreOptions
from keykeeper.service.backup_schedule import (
    EMPTY_NOTE,
    BackupSchedule,
    ScheduledBackups,
    marker,
)
from keykeeper.service.key_args import CreateKey
from keykeeper.service.lifecycle_jobs import build_scheduler
from tests.backup.conftest import backups
from tests.integration.conftest import Node

HOUR = 3600


@pytest.fixture(scope="module")
def custodians(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, bytes]]:
    """Three hybrid custodian key pairs: (public key file, private PEM)."""
    directory = tmp_path_factory.mktemp("custodians")
    out = []
    for i in range(3):
        private, public = generate_custodian_key("hybrid")
        path = directory / f"custodian-{i}.pub.pem"
        path.write_bytes(public)
        out.append((path, private))
    return out


def _env(directory: Path, custodians: list[tuple[Path, bytes]], **extra: str) -> dict[str, str]:
    return {"KEYKEEPER_BACKUP_DIR": str(directory), "KEYKEEPER_BACKUP_INTERVAL": "1h",
            "KEYKEEPER_BACKUP_RETAIN": "3",
            "KEYKEEPER_BACKUP_CUSTODIANS": ",".join(str(p) for p, _ in custodians),
            "KEYKEEPER_BACKUP_THRESHOLD": "2", **extra}


@pytest.fixture
def scheduled(node: Node, tmp_path: Path,
              custodians: list[tuple[Path, bytes]]) -> Iterator[tuple[Scheduler, Path]]:
    svc = node.services
    directory = tmp_path / "backups"
    schedule = BackupSchedule.from_env(_env(directory, custodians))
    assert schedule is not None and schedule.interval_seconds == HOUR
    job = ScheduledBackups(backups(node), schedule, svc.audit).job()
    scheduler = build_scheduler(
        svc.deps, svc.lookup, svc.approvals, svc.audit, data_dir=tmp_path, node_id="n1",
        interval_seconds=60, destroy_due=svc.destruction.destroy_due, extra_jobs=[job])
    yield scheduler, directory
    scheduler.stop()


def _complete(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()
                  if p.name.startswith("keykeeper-") and p.name.endswith(".kkbackup"))


def _records(node: Node, operation: str) -> list[AuditRecord]:
    return [r for r in node.sink.records
            if isinstance(r, AuditRecord) and r.operation == operation]


def test_scheduled_backups_keep_the_newest_and_open_with_custodians(
        node: Node, scheduled: tuple[Scheduler, Path], custodians: list[tuple[Path, bytes]],
        target_factory: Any) -> None:
    scheduler, directory = scheduled
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="orders"))
    golden = svc.crypto.encrypt(ctx, "orders", b"before the backups").ciphertext
    directory.mkdir()
    mark = marker(backups(node).signer.fingerprint())
    young = directory / f".keykeeper-{mark}-20250101T000000Z-bk-0123456789abcdef.kkbackup.partial"
    young.write_bytes(b'{"format":"keykeeper-backup"')      # a run in progress elsewhere
    stale = directory / f".keykeeper-{mark}-20240101T000000Z-bk-fedcba9876543210.kkbackup.partial"
    stale.write_bytes(b"cut off by a crash")
    os.utime(stale, (time.time() - 3 * 86_400,) * 2)
    (directory / "notes.txt").write_text("not an archive")

    made: list[str] = []
    for _ in range(5):
        ran = scheduler.run_due()
        assert ran["backup"].done == 1 and ran["backup"].failed == 0
        made.append(_complete(directory)[-1])
        node.clock.advance(minutes=30)
        assert "backup" not in scheduler.run_due()      # not due within the hour
        node.clock.advance(minutes=30)

    assert len(set(made)) == 5 and made == sorted(made)
    assert _complete(directory) == made[-3:]            # the oldest two deleted
    assert young.exists() and not stale.exists()        # a young partial is left alone
    assert (directory / "notes.txt").exists()
    for name in made[-3:]:
        path = directory / name
        assert path.stat().st_mode & 0o777 == 0o600
        privates = [load_private_keys(priv) for _, priv in custodians]
        report = verify_archive(lambda p=path: p.open("rb"), private_keys=privates[1:])
        assert report.opened and report.counts["keys"] == 1
        assert report.custody["custodians"]["threshold"] == 2  # type: ignore[index]
        assert "shares" not in report.custody or report.custody["shares"] is None
        with pytest.raises(WrongBackupKey):
            verify_archive(lambda p=path: p.open("rb"), private_keys=privates[:1])

    # The newest opens with two custodians' keys and restores elsewhere.
    newest = directory / made[-1]
    with newest.open("rb") as f:
        header = ArchiveReader(f).header
    key = open_key(header, private_keys=[load_private_keys(custodians[0][1]),
                                         load_private_keys(custodians[2][1])])
    assert key is not None
    target = target_factory("sqlite")
    import hashlib
    digest = hashlib.sha256(newest.read_bytes()).hexdigest()
    backups(target).restore.restore(
        target.ctx(), lambda: newest.open("rb"),
        RestoreOptions(backup_key=key.raw, signer=backups(node).signer.fingerprint()),
        archive_sha256=digest)
    assert target.services.crypto.decrypt(target.ctx(), "orders", golden)[0] == \
        b"before the backups"

    created = _records(node, "backup.create")
    assert len(created) == 5
    assert all(r.principal == "scheduler" and r.interface == "scheduler"
               and r.outcome == "success" and r.items == 1 for r in created)
    notes = _records(node, "backup.scheduled")
    assert len(notes) == 5 and made[0] in (notes[3].detail or "")
    assert len(_records(node, "scheduler.backup")) == 5


def test_a_failed_run_deletes_nothing_and_is_audited(
        node: Node, scheduled: tuple[Scheduler, Path]) -> None:
    scheduler, directory = scheduled
    node.services.keys.create(node.ctx(), CreateKey(name="k1"))
    assert scheduler.run_due()["backup"].done == 1
    before = sorted(p.name for p in directory.iterdir())
    node.clock.advance(hours=1)
    node.services.deps.custody.seal()                   # no signing key: the run fails
    result = scheduler.run_job("backup")
    assert result.failed == 1 and result.done == 0
    assert sorted(p.name for p in directory.iterdir()) == before   # no partial left
    failed = [r for r in _records(node, "backup.create") if r.outcome == "error"]
    assert len(failed) == 1 and failed[0].error_code == "sealed"
    runs = _records(node, "scheduler.backup")
    assert runs[-1].outcome == "error"


def test_settings(tmp_path: Path, custodians: list[tuple[Path, bytes]]) -> None:
    assert BackupSchedule.from_env({}) is None
    ok = BackupSchedule.from_env(_env(tmp_path, custodians, KEYKEEPER_BACKUP_INTERVAL="1d"))
    assert ok is not None and ok.interval_seconds == 86_400 and ok.threshold == 2
    assert "custodians" in repr(ok) and "BEGIN" not in repr(ok)
    one = BackupSchedule.from_env({"KEYKEEPER_BACKUP_DIR": str(tmp_path),
                                   "KEYKEEPER_BACKUP_CUSTODIANS": str(custodians[0][0])})
    assert one is not None and one.threshold == 1 and one.retain == 7
    bad_pem = tmp_path / "bad.pem"
    bad_pem.write_text("not a key")
    refused = {
        "KEYKEEPER_BACKUP_CUSTODIANS": {"KEYKEEPER_BACKUP_CUSTODIANS": ""},
        "cannot read": {"KEYKEEPER_BACKUP_CUSTODIANS": str(tmp_path / "missing.pem")},
        "bad.pem": {"KEYKEEPER_BACKUP_CUSTODIANS": str(bad_pem)},
        "KEYKEEPER_BACKUP_THRESHOLD": {"KEYKEEPER_BACKUP_THRESHOLD": "4"},
        "KEYKEEPER_BACKUP_RETAIN": {"KEYKEEPER_BACKUP_RETAIN": "0"},
        "KEYKEEPER_BACKUP_INTERVAL": {"KEYKEEPER_BACKUP_INTERVAL": "5"},
    }
    for needle, change in refused.items():
        with pytest.raises(InvalidArgument, match=needle):
            BackupSchedule.from_env(_env(tmp_path, custodians, **change))


def test_an_empty_store_is_not_backed_up(node: Node, scheduled: tuple[Scheduler, Path]) -> None:
    """A recovery node started before its restore: no empty archive, nothing deleted."""
    scheduler, directory = scheduled
    directory.mkdir()
    good = directory / "keykeeper-20240101T000000Z-bk-0123456789abcdef.kkbackup"
    good.write_bytes(b"the lost instance's archive")
    result = scheduler.run_job("backup")
    assert result.done == 0 and result.failed == 0 and EMPTY_NOTE in (result.detail or "")
    assert sorted(p.name for p in directory.iterdir()) == [good.name]
    assert not _records(node, "backup.create")
    deadline = time.monotonic() + 5
    while not _records(node, "backup.scheduled") and time.monotonic() < deadline:
        time.sleep(0.02)
    (note,) = _records(node, "backup.scheduled")
    assert EMPTY_NOTE in (note.detail or "")


def test_retention_deletes_only_what_this_schedule_wrote(
        node: Node, scheduled: tuple[Scheduler, Path]) -> None:
    scheduler, directory = scheduled
    node.services.keys.create(node.ctx(), CreateKey(name="k1"))
    directory.mkdir()
    others = [directory / name for name in (
        "keykeeper-20200101T000000Z-bk-0123456789abcdef.kkbackup",   # copied in by hand
        "keykeeper-sched-0123456789ab-20200101T000000Z-bk-0123456789abcdef.kkbackup",
        "before-the-upgrade.kkbackup")]
    for path in others:
        path.write_bytes(b"not ours")
    for _ in range(5):
        assert scheduler.run_job("backup").done == 1
        node.clock.advance(hours=1)
    mark = marker(backups(node).signer.fingerprint())
    ours = [p for p in directory.iterdir() if p.name.startswith(f"keykeeper-{mark}-")]
    assert len(ours) == 3
    assert all(p.exists() for p in others)


def test_scheduler_run_backup_when_not_configured(node: Node, tmp_path: Path) -> None:
    from keykeeper.errors import FailedPrecondition
    svc = node.services
    scheduler = build_scheduler(
        svc.deps, svc.lookup, svc.approvals, svc.audit, data_dir=tmp_path, node_id="n1",
        interval_seconds=60, destroy_due=svc.destruction.destroy_due)
    svc.scheduling.scheduler = scheduler
    try:
        with pytest.raises(FailedPrecondition, match=r"not configured .*\(KEYKEEPER_BACKUP_DIR\)"):
            svc.scheduling.run_now("backup")
    finally:
        svc.scheduling.scheduler = None
        scheduler.stop()


@pytest.mark.timeout(120)  # before the fix, the server started and served
def test_bad_backup_setting_is_refused_before_the_banner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from keykeeper.config import run_server
    monkeypatch.setenv("KEYKEEPER_BACKUP_DIR", str(tmp_path / "backups"))
    monkeypatch.setenv("KEYKEEPER_BACKUP_CUSTODIANS", "")
    monkeypatch.delenv("KEYKEEPER_DATABASE_URL", raising=False)
    monkeypatch.setenv("KEYKEEPER_DATA_DIR", str(tmp_path / "data"))  # run_server sets it
    with pytest.raises(InvalidArgument, match="KEYKEEPER_BACKUP_CUSTODIANS"):
        run_server(listen="127.0.0.1:18299", data_dir=str(tmp_path / "data"))
    assert "listening on" not in capsys.readouterr().err
