"""The audit file: chains continued across restarts and rotation, slots per process, torn
and unreadable tails, a deleted or replaced file noticed, alerted and replaced, and a
path that cannot be opened (a directory, FIFO, symlink) refused: fail closed, then
recover."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import pytest

from keykeeper.audit import file_sink
from keykeeper.audit.file_sink import (
    FileAuditSink,
    acquire_slot,
    node_files,
    rotated_files,
    slot_path,
)
from keykeeper.audit.verify import Head, verify_files
from keykeeper.errors import InvalidArgument, Unavailable
from keykeeper.service.audit import Auditor
from tests.audit.conftest import Trail, ctx


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def _audit(a: object, n: int, operation: str = "encrypt") -> None:
    for _ in range(n):
        with a.audited(ctx(), operation):  # type: ignore[attr-defined]
            pass


def test_a_restart_continues_the_chain_from_the_file(trail: Trail) -> None:
    first = trail.open()
    _audit(first, 5)
    key = first.keys().public_raw  # type: ignore[union-attr]
    first.close()
    second = trail.open()
    _audit(second, 3)
    second.close()
    recs = _records(trail.path)
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    assert {r["chain"] for r in recs} == {"node-a"}
    assert [r["reason"] for r in recs if r["operation"] == "audit.checkpoint"] == \
        ["shutdown", "shutdown"]
    assert verify_files([trail.path], public_key=key).ok


def test_rotation_by_size_carries_the_chain_and_signs_each_file(trail: Trail) -> None:
    a = trail.open(max_bytes=4000)
    _audit(a, 60)
    key = a.keys().public_raw  # type: ignore[union-attr]
    a.close()
    rotated = rotated_files(trail.path)
    assert len(rotated) >= 3
    files = [*rotated, trail.path]
    for f in rotated:
        recs = _records(f)
        assert recs[-1]["operation"] == "audit.checkpoint" and recs[-1]["reason"] == "rotate"
        assert f.stat().st_size < 4000 + 1000
    assert verify_files(list(reversed(files)), public_key=key).ok   # any order
    # A rotated-in file alone: its start is mid-chain.
    alone = verify_files([files[1]], public_key=key)
    assert [p.kind for p in alone.problems] == ["start"]
    assert verify_files([files[1]], public_key=key, from_checkpoint=True).ok
    # A whole file deleted from the middle of the set.
    gap = verify_files([files[0], *files[2:]], public_key=key)
    assert [p.kind for p in gap.problems] == ["missing"]
    assert set(node_files(trail.path)) == set(files)


def test_a_checkpoint_that_crosses_the_limit_rotates_at_once(trail: Trail) -> None:
    """The batch that crosses ``max_bytes`` ends with a checkpoint: the file already ends
    signed, so it rotates right after it instead of waiting for another checkpoint."""
    probe = Trail(trail.deps, trail.path.with_name("probe.log"))
    try:
        p = probe.open()
        _audit(p, 3)
        before = probe.path.stat().st_size
        p.checkpoint_now()
        after = probe.path.stat().st_size
    finally:
        probe.close_all()
    a = trail.open(max_bytes=(before + after) // 2)
    _audit(a, 3)
    assert rotated_files(trail.path) == []
    head = a.checkpoint_now()
    rotated = rotated_files(trail.path)
    assert len(rotated) == 1
    assert _records(rotated[0])[-1]["seq"] == head.seq
    _audit(a, 1)
    key = a.keys().public_raw  # type: ignore[union-attr]
    a.close()
    assert _records(trail.path)[0]["seq"] == head.seq + 1
    assert verify_files([rotated[0], trail.path], public_key=key).ok


def test_a_torn_last_line_is_ended_and_the_chain_continues(trail: Trail) -> None:
    a = trail.open()
    _audit(a, 4)
    a.close()
    with trail.path.open("ab") as fh:
        fh.write(b'{"chain":"node-a","seq":999,"pre')   # a crash mid-write
    b = trail.open()
    _audit(b, 2)
    key = b.keys().public_raw  # type: ignore[union-attr]
    b.close()
    lines = trail.path.read_bytes().splitlines()
    assert lines[5] == b'{"chain":"node-a","seq":999,"pre'
    assert json.loads(lines[6])["seq"] == json.loads(lines[4])["seq"] + 1
    report = verify_files([trail.path], public_key=key)
    assert [(p.kind, p.line) for p in report.problems] == [("invalid", 6)]
    assert "torn_tail" in trail.alerts


def test_an_unreadable_tail_starts_a_new_segment_and_alerts(trail: Trail) -> None:
    a = trail.open()
    _audit(a, 3)
    a.close()
    with trail.path.open("ab") as fh:
        fh.write(b"garbage that is not a record\n")
    b = trail.open()
    _audit(b, 2)
    b.close()
    recs = [json.loads(x) for x in trail.path.read_bytes().splitlines() if x.startswith(b"{")]
    new = [r for r in recs if r["chain"] != "node-a"]
    assert new[0]["operation"] == "audit.segment" and new[0]["seq"] == 1
    assert str(new[0]["chain"]).startswith("node-a~")
    assert "not an audit record" in str(new[0]["detail"])
    assert "tail_unreadable" in trail.alerts
    assert any(r["operation"] == "audit.alert" and r["chain"] == new[0]["chain"]
               for r in recs)
    kinds = [p.kind for p in verify_files([trail.path], public_key=b.keys().public_raw  # type: ignore[union-attr]
                                          ).problems]
    assert sorted(kinds) == ["invalid", "segment"]


def test_each_process_takes_its_own_slot_file_and_chain(trail: Trail) -> None:
    a, b = trail.open(), trail.open()
    _audit(a, 2)
    _audit(b, 2)
    assert a.chain.id == "node-a" and b.chain.id == "node-a.1"
    a.close()
    b.close()
    assert slot_path(trail.path, 1).exists()
    assert {r["chain"] for r in _records(slot_path(trail.path, 1))} == {"node-a.1"}
    c = trail.open()             # slot 0 is free again: its chain continues
    assert c.chain.id == "node-a" and c.chain.seq == len(_records(trail.path))
    slot = acquire_slot(trail.path)
    assert slot.number == 1
    slot.release()


def test_a_deleted_audit_file_is_noticed_alerted_and_replaced(trail: Trail) -> None:
    a = trail.open()
    _audit(a, 3)
    os.unlink(trail.path)
    _audit(a, 2)
    a.close()
    assert "deleted" in trail.alerts
    recs = _records(trail.path)
    assert recs[0]["seq"] == 4                     # the chain went on in a fresh file
    alert = next(r for r in recs if r["operation"] == "audit.alert")
    assert alert["error_code"] == "deleted" and "was deleted" in str(alert["detail"])


def test_a_replaced_audit_file_is_noticed(trail: Trail) -> None:
    a = trail.open()
    _audit(a, 2)
    os.rename(trail.path, trail.path.with_suffix(".old"))
    trail.path.write_bytes(b"")
    _audit(a, 1)
    a.close()
    assert "replaced" in trail.alerts
    assert _records(trail.path)[0]["seq"] == 3


# -- a path that cannot be opened: fail closed, never a stale descriptor, recover ---------

def _sink(a: Auditor) -> FileAuditSink:
    sink = a._workers[0].sink
    assert isinstance(sink, FileAuditSink)
    return sink


def _refused(a: Auditor, operation: str = "encrypt") -> None:
    with pytest.raises(Unavailable), a.audited(ctx(), operation):
        pass


def test_a_directory_in_place_of_the_file_fails_closed_and_no_reused_descriptor_is_touched(
        trail: Trail) -> None:
    """Breaker: the old descriptor was closed, reopening failed, and its number was kept;
    the process reused it for client sockets, which then got audit lines (and were
    closed). The sink must hold no descriptor while the path cannot be opened."""
    a = trail.open()
    _audit(a, 3)
    last = a.chain.seq
    os.unlink(trail.path)
    os.mkdir(trail.path)
    _refused(a)                                  # fail closed: 503
    assert _sink(a)._fd is None                  # no closed number kept
    r, w = os.pipe()                             # takes the lowest free numbers (reuse)
    try:
        os.set_blocking(r, False)
        for _ in range(3):
            _refused(a)
        assert {"deleted", "unwritable"} <= set(trail.alerts)
        assert trail.alerts.count("unwritable") == 1    # once per outage
        os.rmdir(trail.path)
        _audit(a, 2)                             # recovers by itself
        os.fstat(r), os.fstat(w)                 # neither was closed by the sink
        with pytest.raises(BlockingIOError):
            os.read(r, 65536)                    # and nothing was written into it
    finally:
        os.close(r)
        os.close(w)
    assert "reopened" in trail.alerts
    recs = _records(trail.path)                  # a fresh file continues the chain
    assert recs[0]["seq"] > last + 1 and recs[0]["chain"] == "node-a"
    assert recs[0]["prev"] == a.record_hash(None, int(str(recs[0]["seq"])) - 1).hash
    assert [r["seq"] for r in recs] == list(range(int(str(recs[0]["seq"])),
                                                  int(str(recs[-1]["seq"])) + 1))
    reopened = next(r for r in recs if r.get("error_code") == "reopened")
    assert "is a directory" in str(reopened["detail"])


def test_a_fifo_is_refused_without_blocking_and_the_sink_recovers(trail: Trail) -> None:
    """Breaker: a FIFO at the path hung the writer thread in a blocking open() for good,
    so every request stayed 503 after the FIFO was removed."""
    a = trail.open(timeout=1.0)
    _audit(a, 2)
    os.unlink(trail.path)
    os.mkfifo(trail.path)
    started = time.monotonic()
    _refused(a)                                  # no reader: refused at once
    _refused(a)
    assert time.monotonic() - started < 1.0
    os.unlink(trail.path)                        # nobody ever opened it for reading
    _audit(a, 1)                                 # the writer thread is not stuck in open()
    assert trail.path.is_file() and not trail.path.is_symlink()
    os.unlink(trail.path)
    os.mkfifo(trail.path)
    reader = os.open(trail.path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        _refused(a)                              # with a reader: not a regular file
        with contextlib.suppress(BlockingIOError):   # nothing written into it
            assert os.read(reader, 65536) == b""
    finally:
        os.close(reader)
    os.unlink(trail.path)
    _audit(a, 1)
    a.close()                                    # the alert record follows that batch
    assert {"deleted", "unwritable", "reopened"} <= set(trail.alerts)
    detail = next(r["detail"] for r in _records(trail.path)
                  if r.get("error_code") == "reopened")
    assert "a FIFO" in str(detail)


def _swap_in_symlink(target: Path, path: Path) -> None:
    tmp = path.with_name(path.name + ".link")
    os.symlink(target, tmp)
    os.replace(tmp, path)


def test_a_symlink_or_device_is_refused_and_nothing_is_written_through_it(
        trail: Trail, tmp_path: Path) -> None:
    a = trail.open()
    _audit(a, 2)
    elsewhere = tmp_path / "elsewhere.log"
    elsewhere.write_bytes(b"")
    # Swapped in atomically: the sink may be re-creating the path at any moment.
    _swap_in_symlink(Path("/dev/null"), trail.path)
    _refused(a)
    _swap_in_symlink(elsewhere, trail.path)       # a link to a regular file: refused too
    _refused(a)
    assert elsewhere.read_bytes() == b""
    os.unlink(trail.path)
    _audit(a, 1)
    assert {"deleted", "unwritable", "reopened"} <= set(trail.alerts)
    a.close()
    os.unlink(trail.path)                         # a server does not start on one either
    os.symlink(elsewhere, trail.path)
    with pytest.raises(InvalidArgument, match="symbolic link"):
        trail.open()


def test_a_replacement_by_a_symlink_is_noticed(trail: Trail) -> None:
    """A link to the very file the sink writes is still not the file it opened."""
    a = trail.open()
    _audit(a, 2)
    moved = trail.path.with_name("moved.log")
    os.rename(trail.path, moved)
    os.symlink(moved, trail.path)
    _refused(a)
    assert "replaced" in trail.alerts and _sink(a)._fd is None
    os.unlink(trail.path)
    _audit(a, 1)


def test_a_rotation_whose_new_file_cannot_be_opened_fails_closed_then_recovers(
        trail: Trail, monkeypatch: pytest.MonkeyPatch) -> None:
    a = trail.open(max_bytes=3000)
    real = file_sink.open_audit_file
    broken = [True]

    def flaky(path: Path) -> tuple[int, os.stat_result]:
        if broken[0]:
            raise OSError(13, f"cannot open the audit file {path}: Permission denied")
        return real(path)

    monkeypatch.setattr(file_sink, "open_audit_file", flaky)
    for _ in range(40):                          # until a rotation has happened
        try:
            _audit(a, 1)
        except Unavailable:
            break
    assert rotated_files(trail.path) and _sink(a)._fd is None
    _refused(a)
    assert "unwritable" in trail.alerts
    broken[0] = False
    _audit(a, 2)
    assert "reopened" in trail.alerts and _records(trail.path)


def test_pending_bytes_are_not_spliced_into_a_fresh_file(trail: Trail) -> None:
    """What a failed write left for the old file goes to the new one as whole records,
    never as the rest of a line begun in the old file."""
    a = trail.open()
    _audit(a, 1)
    sink = _sink(a)
    whole = b'{"chain":"x","seq":0,"prev":"","time":"","operation":"lost","outcome":"x"}\n'
    sink._pending, sink._pending_mid_line = b'ation":"cut"}\n' + whole, True
    os.unlink(trail.path)
    _audit(a, 1)
    lines = trail.path.read_bytes().splitlines(keepends=True)
    assert lines[0] == whole and all(x.startswith(b'{"chain"') for x in lines)


def test_server_verify_reports_its_chain_when_no_file_holds_it(trail: Trail) -> None:
    """Breaker: with the file deleted (or replaced by a symlink to /dev/null) the
    server's verify answered ok, "no audit records found", although it had written
    records of its chain."""
    a = trail.open()
    _audit(a, 3)
    head = a.written_head()
    os.unlink(trail.path)
    report = a.verify()
    assert not report.ok
    assert [(p.kind, p.chain, p.seq) for p in report.problems] == [
        ("truncated", "node-a", head.seq)]
    os.symlink("/dev/null", trail.path)
    assert [p.kind for p in a.verify().problems] == ["truncated"]
    os.unlink(trail.path)


def test_a_head_without_any_record_in_the_files_is_truncated(tmp_path: Path) -> None:
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    report = verify_files([empty], heads={"n": Head("n", 7, "0" * 64)})
    assert [(p.kind, p.seq) for p in report.problems] == [("truncated", 7)]
    assert verify_files([empty], heads={"n": Head("n", 0, "0" * 64)}).ok
