"""Tampering with an audit file -- edits, deletions, insertions, reordering, truncation --
at random positions over many seeded trials: the verifier catches every case and names
the line or seq."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from keykeeper.audit.verify import Head, Report, line_hash, verify_files, verify_sources
from tests.audit.conftest import Trail, ctx

NAME = "audit.log"


def _write(trail: Trail, records: int = 240, every: int = 37) -> tuple[list[bytes], bytes, Head]:
    a = trail.open()
    for i in range(records):
        with a.audited(ctx("k-" + "a" * 32 if i % 3 else None), "encrypt"):
            pass
        if i % every == every - 1:
            a.checkpoint("periodic")
    keys = a.keys()
    assert keys is not None
    a.close()
    lines = trail.path.read_bytes().splitlines(keepends=True)
    last = lines[-1].rstrip(b"\n")
    head = Head(json.loads(last)["chain"], json.loads(last)["seq"], line_hash(last))
    return lines, keys.public_raw, head


def _verify(lines: list[bytes], key: bytes, head: Head | None = None) -> Report:
    return verify_sources([(NAME, lines)], public_key=key,
                          heads={head.chain: head} if head else None)


def _seqs(report: Report) -> set[int]:
    found: set[int] = set()
    for p in report.problems:
        if p.seq is not None:
            found.add(p.seq)
        for a, b in re.findall(r"seq (\d+)(?:\.\.(\d+))?", p.message):
            found.update(range(int(a), int(b or a) + 1))
    return found


def _lines(report: Report) -> set[int]:
    found = {p.line for p in report.problems if p.line is not None}
    for p in report.problems:
        found.update(int(n) for n in re.findall(re.escape(NAME) + r":(\d+)", p.message))
    return found


def _seq_of(line: bytes) -> int:
    return int(json.loads(line)["seq"])


def _edit(lines: list[bytes], rng: random.Random) -> tuple[list[bytes], str, int]:
    i = rng.randrange(len(lines))
    doc = json.loads(lines[i])
    if "principal" in doc:
        doc["principal"] = "mallory"
    elif rng.random() < 0.5:
        doc["reason"] = "edited"
    else:
        doc["time"] = "2020-01-01T00:00:00Z"
    out = list(lines)
    out[i] = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    return out, "line", i + 1


def _delete(lines: list[bytes], rng: random.Random) -> tuple[list[bytes], str, int]:
    i = rng.randrange(len(lines))
    return lines[:i] + lines[i + 1:], "seq", _seq_of(lines[i])


def _insert(lines: list[bytes], rng: random.Random) -> tuple[list[bytes], str, int]:
    i = rng.randrange(len(lines) + 1)
    if rng.random() < 0.3:
        forged = lines[rng.randrange(len(lines))]           # a replayed genuine record
    else:                                                  # a forged, well-linked record
        before = lines[i - 1].rstrip(b"\n") if i else None
        doc = json.loads(lines[0])
        doc.update(seq=_seq_of(before) + 1 if before else 1,
                   prev=line_hash(before) if before else "0" * 64,
                   principal="mallory", operation="key.destroy_version")
        doc.pop("hmac", None)
        forged = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    return [*lines[:i], forged, *lines[i:]], "line", i + 1


def _reorder(lines: list[bytes], rng: random.Random) -> tuple[list[bytes], str, int]:
    a, b = sorted(rng.sample(range(len(lines)), 2))
    out = list(lines)
    out[a], out[b] = out[b], out[a]
    return out, "line", b + 1


def _truncate(lines: list[bytes], rng: random.Random) -> tuple[list[bytes], str, int]:
    k = rng.randrange(1, len(lines))
    return lines[:k], "seq", _seq_of(lines[k])


TAMPERS = {"edit": _edit, "delete": _delete, "insert": _insert, "reorder": _reorder,
           "truncate": _truncate}


def test_the_untouched_file_verifies(trail: Trail) -> None:
    lines, key, head = _write(trail)
    report = _verify(lines, key, head)
    assert report.ok, [str(p) for p in report.problems]
    (chain,) = report.chains
    assert (chain.first_seq, chain.last_seq) == (1, head.seq)
    assert chain.signed_through == head.seq and chain.checkpoints >= 6
    assert verify_files([trail.path], public_key=key).ok  # ends signed (shutdown)


@pytest.mark.parametrize("kind", sorted(TAMPERS))
def test_random_tampering_is_caught_and_located(trail: Trail, kind: str) -> None:
    lines, key, head = _write(trail)
    rng = random.Random(f"keykeeper-audit-{kind}")
    for trial in range(150):
        tampered, what, where = TAMPERS[kind](lines, rng)
        report = _verify(tampered, key, head)
        assert not report.ok, (kind, trial)
        named = _lines(report) if what == "line" else _seqs(report)
        assert where in named, (kind, trial, where, [str(p) for p in report.problems])


def test_without_the_head_a_tail_cut_at_a_checkpoint_is_invisible_offline(
        trail: Trail) -> None:
    """The limit of offline checking: checkpoints sign what precedes them, so a file cut
    right after one still verifies; a server's head (or the next file) reveals it."""
    lines, key, head = _write(trail)
    cut = max(i for i, line in enumerate(lines[:-1]) if b"audit.checkpoint" in line) + 1
    assert _verify(lines[:cut], key).ok
    report = _verify(lines[:cut], key, head)
    assert [p.kind for p in report.problems] == ["truncated"]
    elsewhere = _verify(lines[:cut - 3], key)
    assert [p.kind for p in elsewhere.problems] == ["uncovered"]


def test_a_consistent_rewrite_of_the_unsigned_tail_needs_the_hmac_key_to_be_named(
        trail: Trail) -> None:
    lines, key, _ = _write(trail)
    lines = lines[:-1]                 # as if the server had not shut down yet
    last_cp = max(i for i, line in enumerate(lines) if b"audit.checkpoint" in line)
    victim = last_cp + 2
    rewritten = list(lines)
    for i in range(victim, len(lines)):  # edit one record, re-link all that follow
        doc = json.loads(rewritten[i])
        if i == victim:
            doc["principal"] = "mallory"
        doc["prev"] = line_hash(rewritten[i - 1].rstrip(b"\n"))
        rewritten[i] = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    offline = _verify(rewritten, key)
    assert [p.kind for p in offline.problems] == ["uncovered"]
    hmac_key = trail.built[0].keys()
    assert hmac_key is not None
    server = verify_sources([(NAME, rewritten)], public_key=key,
                            hmac_key=hmac_key.record_key)
    assert any(p.kind == "hmac" and p.line == victim + 1 for p in server.problems)


def test_forged_checkpoints_and_unpinned_keys(trail: Trail, tmp_path: Path) -> None:
    from keykeeper.audit.chain import AuditKeys, encode_line
    from keykeeper.audit.records import AuditRecord
    from keykeeper.custody.keyring import Custody

    lines, key, _ = _write(trail, records=20, every=100)
    other = Custody()
    other.unseal(b"\x01" * 32)
    forger = AuditKeys.derive(other.derive)
    last = lines[-1].rstrip(b"\n")
    doc = json.loads(last)
    rec = AuditRecord(doc["chain"], doc["seq"] + 1, line_hash(last), doc["time"],
                      "audit.checkpoint", "success", reason="forged",
                      public_key=forger.public_b64)
    forged = [*lines, encode_line(rec, forger, sign=True) + b"\n"]
    assert any(p.kind == "key" for p in _verify(forged, key).problems)
    unpinned = verify_sources([(NAME, forged)])
    assert [p.kind for p in unpinned.problems] == ["key"]  # self-consistent, but not pinned


def _live_copy(trail: Trail, records: int = 30) -> tuple[list[bytes], bytes, int]:
    """A copy of a live file: a checkpoint written on request, then more records (the
    checkpoint call's own and others'), and no shutdown checkpoint at its end."""
    a = trail.open()
    for _ in range(records):
        with a.audited(ctx(), "encrypt"):
            pass
    head = a.checkpoint_now(ctx())
    for _ in range(3):
        with a.audited(ctx(), "encrypt"):
            pass
    keys = a.keys()
    assert keys is not None
    return trail.path.read_bytes().splitlines(keepends=True), keys.public_raw, head.seq


def test_a_copy_verifies_to_its_last_checkpoint_and_only_that_far(trail: Trail) -> None:
    lines, key, checkpoint = _live_copy(trail)
    assert json.loads(lines[checkpoint - 1])["reason"] == "requested"
    strict = _verify(lines, key)
    assert [p.kind for p in strict.problems] == ["uncovered"]
    assert "keykeeper audit checkpoint" in strict.problems[0].message
    cut = verify_sources([(NAME, lines)], public_key=key, to_checkpoint=True)
    assert cut.ok, [str(p) for p in cut.problems]
    assert cut.chains[0].last_seq == cut.chains[0].signed_through == checkpoint
    assert cut.notes == [f"chain node-a: 3 records after the last checkpoint (seq "
                         f"{checkpoint}, {NAME}:{checkpoint}) left out, not verified "
                         f"(--to-checkpoint): seq {checkpoint + 1}..{checkpoint + 3}"]
    # Tampering before the checkpoint is still caught; a server's head is not used.
    rng = random.Random("keykeeper-audit-to-checkpoint")
    for kind in ("edit", "delete", "insert", "reorder"):
        for trial in range(40):
            tampered, _, _ = TAMPERS[kind](lines[:checkpoint - 1], rng)
            report = verify_sources([(NAME, tampered + lines[checkpoint - 1:])],
                                    public_key=key, to_checkpoint=True)
            assert not report.ok, (kind, trial)
    far = Head("node-a", checkpoint + 50, "0" * 64)
    assert verify_sources([(NAME, lines)], public_key=key, to_checkpoint=True,
                          heads={"node-a": far}).ok
    unsigned = [x for x in lines if b"audit.checkpoint" not in x][:5]
    report = verify_sources([(NAME, unsigned)], public_key=key, to_checkpoint=True)
    assert [p.kind for p in report.problems] == ["uncovered"]
    assert "no checkpoint to end at" in report.problems[0].message


def test_a_copy_older_than_the_server_head_is_named_precisely(trail: Trail) -> None:
    """The server wrote past the end of a copy: truncated or older, it cannot be told
    apart, and the report says exactly that; what the server confirms is not a head."""
    lines, key, _ = _live_copy(trail)
    last = lines[-1].rstrip(b"\n")
    seq = _seq_of(last)
    confirmed = {"node-a": Head("node-a", seq, line_hash(last))}
    for beyond, words in ((1, "1 record after the end of these files (seq {a}) is not in "
                              "them -- truncated, or a copy taken before it was written"),
                          (3, "3 records after the end of these files (seq {a}..{b}) are "
                              "not in them -- truncated, or a copy taken before they were "
                              "written")):
        head = {"node-a": Head("node-a", seq + beyond, "f" * 64)}
        report = verify_sources([(NAME, lines)], public_key=key, heads=head,
                                confirmed=confirmed)
        (problem,) = report.problems
        assert problem.kind == "truncated"
        assert problem.message.startswith(
            f"the files end at seq {seq}; the server had written chain node-a up to seq "
            f"{seq + beyond} before they were read: " +
            words.format(a=seq + 1, b=seq + beyond)), problem.message
        (chain,) = report.chains
        assert (chain.head_confirmed, chain.server_head) == (seq, seq + beyond)
    same = verify_sources([(NAME, lines)], public_key=key,
                          heads={"node-a": confirmed["node-a"]}, confirmed=confirmed)
    assert same.ok and (same.chains[0].head_confirmed, same.chains[0].server_head) == (seq, seq)
