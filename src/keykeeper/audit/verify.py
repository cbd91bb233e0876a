"""Offline verification of keykeeper audit files: pure (stdlib, msgspec, pyca/cryptography).

Anyone holding copies of the audit files and the checkpoint public key can run this
(``keykeeper audit verify FILE...``); the server runs it too, with the HMAC key, for
``POST /v1/audit/verify``. The format it checks (docs/audit-format.md):

* every line is one JSON object with ``chain``, ``seq``, ``prev``, ``operation``; the
  authenticators ``hmac`` and ``signature``, when present, come last, so a record's
  *canonical bytes* are its line with them removed;
* per chain, ``seq`` runs 1, 2, 3, ... and ``prev`` is the hex SHA-256 of the exact
  line (without its newline) of the record with the previous ``seq``; 64 zeros for seq 1;
* ``hmac`` is HMAC-SHA256 of the canonical bytes under the audit key (HKDF of the root key);
* an ``audit.checkpoint`` record carries ``signature``: Ed25519 over its canonical bytes,
  which include ``prev``, so it signs the whole chain up to it.

What is reported, one :class:`Problem` per finding, naming files, lines and seqs: lines
that are not records (edited into invalid JSON, torn writes); duplicated seqs (inserted
or copied records); records out of order; missing seqs (deleted records or files); records
whose hash does not match the ``prev`` of their successor (modified); wrong HMACs; bad
signatures or a key other than the pinned one; a chain that does not start at seq 1;
records after the last checkpoint (not covered by a signature: truncation cannot be ruled
out unless a server's chain head vouches for them); a mismatch with a server's head.

``to_checkpoint`` verifies each chain only up to its last checkpoint (a copy of a live
file, taken after ``POST /v1/audit/checkpoint``): the records after it are left out and
noted, never reported as verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "CHECKPOINT",
    "SEGMENT",
    "ZERO_HASH",
    "ChainSummary",
    "Head",
    "Problem",
    "Report",
    "canonical_bytes",
    "line_hash",
    "load_public_key",
    "record_hmac",
    "verify_files",
    "verify_sources",
]

ZERO_HASH = "0" * 64
CHECKPOINT = "audit.checkpoint"
SEGMENT = "audit.segment"
# The authenticators at the end of a line: ``,"hmac":"<64 hex>"`` then ``,"signature":"<b64>"``.
_SUFFIX = re.compile(rb'(?:,"hmac":"[0-9a-f]{64}")?(?:,"signature":"[A-Za-z0-9+/]{86}==")?\}\Z')


def line_hash(line: bytes) -> str:
    """Hex SHA-256 of one record's exact line, without its newline (what ``prev`` holds)."""
    return hashlib.sha256(line).hexdigest()


def canonical_bytes(line: bytes) -> bytes:
    """The bytes the HMAC and the signature cover: the line without its trailing
    ``"hmac"`` and ``"signature"`` members. A line without them is its own canonical form
    (and so is one where they are not last: its authenticators then cannot match)."""
    m = _SUFFIX.search(line)
    if m is None or m.start() == m.end() - 1:
        return line
    return line[:m.start()] + b"}"


def record_hmac(key: bytes, canonical: bytes) -> str:
    """Hex HMAC-SHA256 of a record's canonical bytes."""
    return hmac.digest(key, canonical, "sha256").hex()


def load_public_key(data: bytes | str) -> bytes:
    """The raw 32-byte Ed25519 public key from a PEM (SubjectPublicKeyInfo) or a base64 raw
    key. Raises ValueError if it is neither."""
    text = data.encode() if isinstance(data, str) else data
    if b"-----BEGIN" in text:
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the public key is not an Ed25519 key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a PEM public key nor a base64 Ed25519 key") from None
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return raw


class _Line(msgspec.Struct):
    """The members the verifier reads; others are ignored."""

    chain: str
    seq: int
    prev: str
    operation: str
    time: str = ""
    detail: str | None = None
    hmac: str | None = None
    signature: str | None = None
    public_key: str | None = None


_decoder = msgspec.json.Decoder(_Line)


@dataclass(frozen=True)
class Problem:
    """One finding. ``kind`` is one of: invalid, torn, duplicate, order, missing, start,
    segment, modified, hmac, signature, key, uncovered, truncated, head."""

    kind: str
    message: str
    chain: str | None = None
    seq: int | None = None
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else ""
        return f"{where}{self.kind}: {self.message}"


@dataclass(frozen=True)
class Head:
    """A server's view of a chain's last record: its ``seq`` and line hash."""

    chain: str
    seq: int
    hash: str


@dataclass
class ChainSummary:
    chain: str
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: int = 0
    signed_through: int | None = None   # seq of the last valid checkpoint
    head_confirmed: int | None = None   # highest seq a server vouched for (same hash)
    server_head: int | None = None      # seq the server had written before the files were read


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chains: list[ChainSummary] = field(default_factory=list)
    records: int = 0
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_builtins(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "files": self.files,
                "chains": [vars(c) for c in self.chains],
                "problems": [{k: v for k, v in vars(p).items() if v is not None}
                             for p in self.problems],
                "notes": self.notes}


@dataclass(frozen=True, slots=True)
class _Item:
    file: str
    line: int
    raw: bytes
    rec: _Line

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def _read(path: Path) -> Iterable[bytes]:
    with path.open("rb") as fh:
        yield from fh


def verify_files(paths: Sequence[Path], **options: Any) -> Report:
    """Verify audit files (in any order: each chain's files are ordered by their seqs).
    Options as for :func:`verify_sources`. Raises OSError if a file cannot be read."""
    return verify_sources([(str(p), _read(p)) for p in paths], **options)


def verify_sources(sources: Iterable[tuple[str, Iterable[bytes]]], *,
                   public_key: bytes | None = None, from_checkpoint: bool = False,
                   to_checkpoint: bool = False,
                   hmac_key: bytes | None = None, heads: Mapping[str, Head] | None = None,
                   confirmed: Mapping[str, Head] | None = None) -> Report:
    """Verify the records of ``sources`` -- ``(name, lines)`` pairs, lines as read from a
    file (with their newlines) -- and report every problem.

    ``public_key``: the raw Ed25519 key checkpoints must be signed with (pinned); without
    it they are checked against the key the checkpoints carry, which is itself a problem
    (a forger could sign with a key of their own). ``from_checkpoint``: each chain starts
    at its first checkpoint (a file rotated in without its predecessors); what precedes it
    is skipped. ``to_checkpoint``: each chain ends at its last checkpoint (a copy of a
    live file); what follows it is skipped and noted, and ``heads`` and ``confirmed`` are
    not used (the server has written past the cut by design). ``hmac_key``: also check
    every record's HMAC (the server holds it).
    ``heads``: chain heads a server had written *before* the files were read: the files
    must hold each (else they were truncated) with the same hash, and it vouches for the
    records up to it. ``confirmed``: records (typically each chain's last in the files)
    whose hash a server reports *after* the files were read; a match vouches for the
    records up to it. Records after the last checkpoint that nothing vouches for (no
    head, no confirmation, no valid HMAC) are a problem: truncation or forgery there
    could not be ruled out.
    """
    report = Report()
    per_chain: dict[str, list[list[_Item]]] = {}
    for name, lines in sources:
        report.files.append(name)
        current: dict[str, list[_Item]] = {}
        for number, raw in enumerate(lines, 1):
            line = raw[:-1] if raw.endswith(b"\n") else raw
            try:
                rec = _decoder.decode(line)
            except msgspec.DecodeError as exc:
                torn = not raw.endswith(b"\n")
                report.problems.append(Problem(
                    "torn" if torn else "invalid",
                    "the last line is incomplete (a torn write)" if torn else
                    f"not an audit record ({exc}): edited, or not an audit file",
                    file=name, line=number))
                continue
            report.records += 1
            current.setdefault(rec.chain, []).append(_Item(name, number, line, rec))
        for chain, items in current.items():
            per_chain.setdefault(chain, []).append(items)
    signing = [False]  # whether any checkpoint was checked against an unpinned key
    for chain, groups in sorted(per_chain.items()):
        groups.sort(key=lambda g: g[0].rec.seq)
        items = [item for group in groups for item in group]
        _verify_chain(report, chain, items, public_key=public_key,
                      from_checkpoint=from_checkpoint, to_checkpoint=to_checkpoint,
                      hmac_key=hmac_key,
                      head=None if to_checkpoint else (heads or {}).get(chain),
                      confirmed=None if to_checkpoint else (confirmed or {}).get(chain),
                      unpinned=signing)
    for chain, head in sorted((heads or {}).items()):
        if head.seq > 0 and chain not in per_chain and not to_checkpoint:
            # A head the files do not hold at all: every file of the chain is gone.
            report.problems.append(Problem(
                "truncated", f"the server had written chain {chain} up to seq {head.seq} "
                "before the files were read, and no file holds any record of it: its "
                "files were deleted, emptied or replaced", chain=chain, seq=head.seq))
    if not per_chain:
        report.notes.append("no audit records found")
    if signing[0]:
        report.problems.append(Problem(
            "key", "checkpoint signatures were checked only against the public key written "
            "in the file itself, which a forger could replace: pin the key with "
            "--public-key (GET /v1/audit/public-key)"))
    return report


def _ranges(seqs: list[int]) -> str:
    return f"{seqs[0]}" if seqs[0] == seqs[-1] else f"{seqs[0]}..{seqs[-1]}"


def _records(count: int) -> str:
    return f"{count} record" + ("" if count == 1 else "s")


def _verify_chain(report: Report, chain: str, items: list[_Item], *,
                  public_key: bytes | None, from_checkpoint: bool, to_checkpoint: bool,
                  hmac_key: bytes | None, head: Head | None, confirmed: Head | None,
                  unpinned: list[bool]) -> None:
    summary = ChainSummary(chain)
    report.chains.append(summary)
    problems = report.problems

    def problem(kind: str, message: str, item: _Item | None = None) -> None:
        problems.append(Problem(kind, message, chain=chain,
                                seq=item.rec.seq if item else None,
                                file=item.file if item else None,
                                line=item.line if item else None))

    if from_checkpoint:
        first = next((i for i, it in enumerate(items) if it.rec.operation == CHECKPOINT), None)
        if first is None:
            problem("start", f"chain {chain}: no checkpoint to start from "
                    f"({len(items)} records skipped)")
            return
        if first:
            report.notes.append(f"chain {chain}: {first} record(s) before the first "
                                f"checkpoint ({items[first].where}) skipped")
        items = items[first:]
    if to_checkpoint:
        end = next((i for i in range(len(items) - 1, -1, -1)
                    if items[i].rec.operation == CHECKPOINT), None)
        if end is None:
            problem("uncovered", f"chain {chain}: no checkpoint to end at "
                    f"(--to-checkpoint): none of its {_records(len(items))} is signed")
            return
        after = items[end + 1:]
        if after:
            seqs_after = sorted(it.rec.seq for it in after)
            report.notes.append(
                f"chain {chain}: {_records(len(after))} after the last checkpoint "
                f"(seq {items[end].rec.seq}, {items[end].where}) left out, not verified "
                f"(--to-checkpoint): seq {_ranges(seqs_after)}")
        items = items[:end + 1]
    summary.records = len(items)
    summary.first_seq, summary.last_seq = items[0].rec.seq, max(i.rec.seq for i in items)

    # Order (file order must follow seq order) and duplicates.
    by_seq: dict[int, list[_Item]] = {}
    previous: _Item | None = None
    for item in items:
        by_seq.setdefault(item.rec.seq, []).append(item)
        if previous is not None and item.rec.seq <= previous.rec.seq:
            if item.rec.seq == previous.rec.seq:
                pass  # reported as a duplicate below
            else:
                problem("order", f"seq {item.rec.seq} comes after seq {previous.rec.seq} "
                        f"({previous.where}): records reordered", item)
        previous = item
    hashes = {id(it): line_hash(it.raw) for it in items}

    def genuine(seq: int) -> _Item | None:
        """The record holding ``seq`` that its successor chains to (or the only one)."""
        found = by_seq.get(seq)
        if not found:
            return None
        if len(found) == 1:
            return found[0]
        succ = by_seq.get(seq + 1)
        if succ:
            for cand in found:
                if any(s.rec.prev == hashes[id(cand)] for s in succ):
                    return cand
        return found[0]

    for seq, found in sorted(by_seq.items()):
        if len(found) > 1:
            keep = genuine(seq)
            assert keep is not None
            where = ", ".join(it.where for it in found)
            same = all(hashes[id(it)] == hashes[id(keep)] for it in found)
            which = ("copies of one record: one inserted" if same else
                     ", ".join(it.where for it in found if it is not keep) + " inserted")
            problem("duplicate", f"seq {seq} appears {len(found)} times ({where}): {which}",
                    keep)

    # Missing seqs: at the start, and gaps.
    seqs = sorted(by_seq)
    start_seq = seqs[0]
    if not from_checkpoint:
        first_item = genuine(start_seq)
        assert first_item is not None
        if start_seq != 1:
            problem("start", f"chain {chain} starts at seq {start_seq}: seq 1.."
                    f"{start_seq - 1} missing (earlier files not given? --from-checkpoint "
                    "starts at the first checkpoint)", first_item)
        elif first_item.rec.prev != ZERO_HASH:
            problem("modified", "seq 1 must have prev = 64 zeros", first_item)
        if first_item.rec.operation == SEGMENT:
            problem("segment", f"chain {chain} is a new segment: "
                    f"{first_item.rec.detail or 'no reason given'}", first_item)
    for a, b in itertools.pairwise(seqs):
        if b > a + 1:
            before, following = genuine(a), genuine(b)
            assert before is not None and following is not None
            problem("missing", f"seq {_ranges([a + 1, b - 1])} missing between "
                    f"{before.where} and {following.where}: deleted", following)

    # Links: each record's prev is the hash of the record with the previous seq.
    for seq in seqs:
        current, pred = genuine(seq), genuine(seq - 1)
        assert current is not None
        if pred is not None and current.rec.prev != hashes[id(pred)]:
            problem("modified", f"seq {seq - 1} ({pred.where}) does not hash to the prev of "
                    f"seq {seq} ({current.where}): one of them was modified", pred)

    # Authenticators.
    signed_through: int | None = None
    hmac_ok: set[int] = set()
    for item in items:
        rec = item.rec
        if hmac_key is not None and rec.hmac is not None:
            if hmac.compare_digest(record_hmac(hmac_key, canonical_bytes(item.raw)), rec.hmac):
                hmac_ok.add(rec.seq)
            else:
                problem("hmac", f"seq {rec.seq}: HMAC does not match: modified", item)
        if rec.operation != CHECKPOINT:
            continue
        summary.checkpoints += 1
        if (_checkpoint_valid(item, public_key, unpinned, problem)
                and genuine(rec.seq) is item):
            signed_through = max(signed_through or 0, rec.seq)
    summary.signed_through = signed_through

    # The end of the chain: truncated? covered by a checkpoint, a server, or HMACs?
    last = genuine(seqs[-1])
    assert last is not None
    covered = signed_through or 0
    if head is not None:
        summary.server_head = head.seq
    for vouch, written_before in ((head, True), (confirmed, False)):
        if vouch is None:
            continue
        at = genuine(vouch.seq) if vouch.seq in by_seq else None
        if vouch.seq > seqs[-1]:
            if written_before:
                beyond = vouch.seq - seqs[-1]
                is_, it, was = ("is", "it", "was") if beyond == 1 else ("are", "they", "were")
                problem("truncated", f"the files end at seq {seqs[-1]}; the server had "
                        f"written chain {chain} up to seq {vouch.seq} before they were read: "
                        f"{_records(beyond)} after the end of these files "
                        f"(seq {_ranges([seqs[-1] + 1, vouch.seq])}) {is_} not in them -- "
                        f"truncated, or a copy taken before {it} {was} written (to verify "
                        "a copy: keykeeper audit checkpoint before copying, then verify the "
                        "copy --offline --to-checkpoint)", last)
            else:
                problem("head", f"the server knows no seq {vouch.seq} of chain {chain}",
                        last)
        elif at is None:
            pass  # within the range but absent: reported as missing
        elif not hmac.compare_digest(hashes[id(at)], vouch.hash):
            problem("head", f"seq {vouch.seq} differs from the record the server wrote: "
                    "modified or forged", at)
        else:
            summary.head_confirmed = max(summary.head_confirmed or 0, vouch.seq)
            covered = max(covered, vouch.seq)
    uncovered = [s for s in seqs if s > covered and s not in hmac_ok]
    if uncovered:
        tail_start = genuine(uncovered[0])
        assert tail_start is not None
        since = f"come after the last checkpoint (seq {covered})" if covered else \
            "precede any checkpoint"
        problem("uncovered", f"seq {_ranges(uncovered)} ({tail_start.where} to {last.where}) "
                f"{since}: no signature covers them, so truncation or changes there cannot "
                "be ruled out (a server's chain head can vouch for them; for a copy of a "
                "live file, write a checkpoint before copying -- keykeeper audit "
                "checkpoint -- and verify the copy --to-checkpoint)", tail_start)


def _checkpoint_valid(item: _Item, public_key: bytes | None, unpinned: list[bool],
                      problem: Any) -> bool:
    rec = item.rec
    if rec.signature is None:
        problem("signature", f"checkpoint seq {rec.seq} has no signature", item)
        return False
    key = public_key
    if rec.public_key is not None:
        try:
            carried = base64.b64decode(rec.public_key, validate=True)
        except (binascii.Error, ValueError):
            carried = b""
        if public_key is None:
            key = carried
            unpinned[0] = True
        elif carried != public_key:
            problem("key", f"checkpoint seq {rec.seq} names another public key than the "
                    "pinned one", item)
            return False
    if not key or len(key) != 32:
        problem("signature", f"checkpoint seq {rec.seq}: no usable public key", item)
        return False
    canon = canonical_bytes(item.raw)
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(
            base64.b64decode(rec.signature, validate=True), canon)
    except (InvalidSignature, binascii.Error, ValueError):
        problem("signature", f"checkpoint seq {rec.seq}: signature does not verify: the "
                "checkpoint was modified or forged", item)
        return False
    return True
