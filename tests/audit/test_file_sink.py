"""The audit file: chains continued across restarts and rotation, slots per process, torn
and unreadable tails, and a deleted or replaced file noticed, alerted and replaced."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keykeeper.audit.file_sink import acquire_slot, node_files, rotated_files, slot_path
from keykeeper.audit.verify import verify_files
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
