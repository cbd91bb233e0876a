"""Fail closed, sink policies and timeouts, keys and sealing, checkpoints, secrets."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from keykeeper.audit.records import AuditRecord
from keykeeper.audit.verify import line_hash, verify_files
from keykeeper.audit.writer import Entry
from keykeeper.errors import FailedPrecondition, NotFound, Sealed, Unavailable
from keykeeper.service.audit import Auditor, SinkConfig
from keykeeper.service.deps import Deps, utcnow
from tests.audit.conftest import TOKEN, Trail, ctx


class Failing:
    def write_batch(self, entries: Sequence[Entry]) -> None:
        raise OSError(28, "No space left on device")

    def close(self) -> None:
        pass


class Stalled:
    """Blocks every write until released (a hung disk, a FIFO nobody reads)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def write_batch(self, entries: Sequence[Entry]) -> None:
        self.release.wait(30)

    def close(self) -> None:
        self.release.set()


class Recording:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write_batch(self, entries: Sequence[Entry]) -> None:
        self.lines.extend(e.line for e in entries)

    def close(self) -> None:
        pass


def _auditor(deps: Deps, *sinks: SinkConfig, timeout: float = 0.5) -> Auditor:
    return Auditor(list(sinks), utcnow, custody=deps.custody, timeout=timeout,
                   checkpoint_seconds=0)


def test_a_failing_required_sink_fails_closed_and_the_action_does_not_run(
        deps: Deps) -> None:
    a = _auditor(deps, SinkConfig(Failing(), "broken"))
    ran = []
    with pytest.raises(Unavailable), a.audited(ctx(), "key.create", mutating=True):
        ran.append(1)
    assert ran == []                                  # the request record came first
    with pytest.raises(Unavailable), a.audited(ctx(), "encrypt"):
        pass                                          # the answer is withheld
    a.close(timeout=1)


def test_a_stalled_required_sink_times_out_without_hanging(deps: Deps) -> None:
    stalled = Stalled()
    a = _auditor(deps, SinkConfig(stalled, "stalled"), timeout=0.3)
    started = time.monotonic()
    with pytest.raises(Unavailable), a.audited(ctx(), "key.create", mutating=True):
        pytest.fail("must not act")
    assert time.monotonic() - started < 1.5
    started = time.monotonic()                        # while stalled: refused at once
    for _ in range(5):
        with pytest.raises(Unavailable), a.audited(ctx(), "encrypt"):
            pass
    assert time.monotonic() - started < 1.0
    stalled.release.set()
    a.close(timeout=2)


def test_the_event_loop_waits_without_blocking_and_times_out(deps: Deps) -> None:
    stalled = Stalled()
    a = _auditor(deps, SinkConfig(stalled, "stalled"), timeout=0.3)

    async def main() -> tuple[int, list[str]]:
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        outcomes = []
        for _ in range(3):
            try:
                async with a.scope(ctx(), "encrypt"):
                    pass
                outcomes.append("ok")
            except Unavailable:
                outcomes.append("unavailable")
        stop = True
        await task
        return ticks, outcomes

    ticks, outcomes = asyncio.run(main())
    assert outcomes == ["unavailable"] * 3
    assert ticks >= 20                                # the loop kept running meanwhile
    stalled.release.set()
    a.close(timeout=2)


def test_one_required_sink_suffices_and_best_effort_never_fails(deps: Deps) -> None:
    kept = Recording()
    a = _auditor(deps, SinkConfig(Failing(), "broken-required"),
                 SinkConfig(kept, "file"), SinkConfig(Failing(), "broken-best",
                                                      required=False))

    async def one() -> None:
        async with a.scope(ctx(), "key.create") as scope:
            await scope.request()

    asyncio.run(one())
    with a.audited(ctx(), "encrypt"):
        pass
    a.close(timeout=2)
    docs = [json.loads(x) for x in kept.lines]
    assert [d["phase"] for d in docs if d["operation"] == "key.create"] == \
        ["request", "response"]
    assert any(d["operation"] == "audit.alert" for d in docs)     # the failure is recorded
    b = _auditor(deps, SinkConfig(Recording(), "ok"),
                 SinkConfig(Failing(), "best", required=False))
    for _ in range(3):
        with b.audited(ctx(), "encrypt"):
            pass
    b.close(timeout=2)


def test_a_full_queue_drops_and_alerts_instead_of_growing(deps: Deps) -> None:
    stalled, kept, alerts = Stalled(), Recording(), []
    a = Auditor([SinkConfig(kept, "file"), SinkConfig(stalled, "slow", required=False,
                                                      max_queue=3)],
                utcnow, custody=deps.custody, checkpoint_seconds=0, on_alert=alerts.append)
    for _ in range(10):
        with a.audited(ctx(), "encrypt"):     # the required sink keeps up: no refusal
            pass
    assert "dropped" in alerts
    stalled.release.set()
    a.close(timeout=2)
    assert any(b'"error_code":"dropped"' in line for line in kept.lines)


def test_sensitive_fields_are_hmacs_never_in_clear(deps: Deps) -> None:
    kept = Recording()
    a = _auditor(deps, SinkConfig(kept, "r"))
    with a.audited(ctx(encryption_context={"tenant": "acme-secret-tenant"}), "encrypt"):
        pass
    a.close(timeout=2)
    text = b"\n".join(kept.lines)
    assert TOKEN.encode() not in text and b"acme-secret-tenant" not in text
    doc = json.loads(kept.lines[0])
    assert doc["token_hmac"] == a.hash_value(TOKEN)
    assert doc["context"] == {"tenant": a.hash_value("acme-secret-tenant")}


def test_while_sealed_no_hmac_no_sensitive_fields_and_seal_signs_first(deps: Deps) -> None:
    kept = Recording()
    a = _auditor(deps, SinkConfig(kept, "r"))
    with a.audited(ctx(encryption_context={"t": "v"}), "encrypt"):
        pass
    deps.custody.seal()                              # the listener checkpoints first
    with a.audited(ctx(encryption_context={"t": "v"}), "sys.unseal"):
        pass
    with pytest.raises(Sealed):
        a.public_key_pem()
    assert a.checkpoint("periodic") is False
    a.close(timeout=2)
    docs = [json.loads(x) for x in kept.lines]
    assert [d["operation"] for d in docs] == ["encrypt", "audit.checkpoint", "sys.unseal"]
    assert docs[1]["reason"] == "seal" and "signature" in docs[1]
    assert "hmac" not in docs[2] and "token_hmac" not in docs[2] and "context" not in docs[2]


def test_checkpoints_every_n_records_and_periodically(deps: Deps) -> None:
    kept = Recording()
    a = Auditor([SinkConfig(kept, "r")], utcnow, custody=deps.custody,
                checkpoint_seconds=0.2, checkpoint_records=10)
    for _ in range(25):
        with a.audited(ctx(), "encrypt"):
            pass
    reasons = [json.loads(x).get("reason") for x in kept.lines]
    assert reasons.count("records") == 2
    deadline = time.monotonic() + 3
    while "periodic" not in [json.loads(x).get("reason") for x in kept.lines]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    a.close(timeout=2)


def test_heads_record_hashes_and_the_server_side_verify(trail: Trail) -> None:
    a = trail.open()
    for _ in range(5):
        with a.audited(ctx(), "encrypt"):
            pass
    head = a.head()
    assert head.chain == "node-a" and head.seq == 5
    assert a.record_hash(None, 5).hash == head.hash
    with pytest.raises(NotFound):
        a.record_hash(None, 6)
    with pytest.raises(NotFound):
        a.head("some-other-node")
    assert a.verify().ok                 # HMACs vouch for the unsigned tail
    lines = trail.path.read_bytes().splitlines(keepends=True)
    doc = json.loads(lines[2])
    doc["outcome"] = "error"
    lines[2] = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    trail.path.write_bytes(b"".join(lines))
    kinds = {p.kind for p in a.verify().problems}
    assert {"hmac", "modified"} <= kinds


def test_records_hold_only_their_fixed_fields(tmp_path: Path) -> None:
    assert set(AuditRecord.__struct_fields__) == {
        "chain", "seq", "prev", "time", "operation", "outcome", "request_id", "interface",
        "phase", "principal", "source", "token_hmac", "error_code", "namespace", "key_id",
        "key_version", "items", "failed_items", "approval_id", "execution", "on_behalf_of",
        "context", "detail", "reason", "public_key", "allow_compromised", "destination_key_id",
        "wrapping_key_fingerprint", "hmac", "signature"}


def test_a_checkpoint_on_request_is_written_waited_for_and_names_the_request(
        trail: Trail, deps: Deps) -> None:
    a = trail.open()
    with a.audited(ctx(), "encrypt"):
        pass
    asking = ctx()
    head = a.checkpoint_now(asking)
    again = a.checkpoint_now(ctx())                    # a checkpoint right after one: fine
    assert (head.chain, head.seq, head.checkpoint) == ("node-a", 2, 2)
    assert again.seq == 3 and a.head().checkpoint == 3
    lines = trail.path.read_bytes().splitlines()      # written when it returns
    assert line_hash(lines[head.seq - 1]) == head.hash
    doc = json.loads(lines[head.seq - 1])
    assert (doc["operation"], doc["reason"], doc["request_id"], doc["principal"]) == (
        "audit.checkpoint", "requested", asking.request_id, "tester")
    keys = a.keys()
    assert keys is not None
    assert verify_files([trail.path], public_key=keys.public_raw).ok   # ends signed
    deps.custody.seal()
    with pytest.raises(Sealed):
        a.checkpoint_now(ctx())
    with pytest.raises(FailedPrecondition):
        Auditor([], utcnow).checkpoint_now(ctx())


class ThreadRecording:
    """Records, per batch, the writing thread and the seqs; ``hold`` blocks the next
    write until ``release`` is set (an inline write that hangs)."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, list[int]]] = []
        self.hold = threading.Event()
        self.holding = threading.Event()
        self.release = threading.Event()

    def write_batch(self, entries: Sequence[Entry]) -> None:
        if self.hold.is_set():
            self.hold.clear()
            self.holding.set()
            self.release.wait(30)
        self.batches.append((threading.get_ident(), [e.record.seq for e in entries]))

    def close(self) -> None:
        self.release.set()

    def seqs(self) -> list[int]:
        return [seq for _, batch in self.batches for seq in batch]


def test_an_idle_inline_sink_is_written_by_the_waiting_thread(deps: Deps) -> None:
    sink = ThreadRecording()
    a = _auditor(deps, SinkConfig(sink, "file", inline=True))
    for _ in range(3):
        with a.audited(ctx(), "encrypt"):
            pass
    assert sink.batches == [(threading.get_ident(), [n]) for n in (1, 2, 3)]
    a.note("alert", detail="nobody waits for this one")  # queued to the writer thread
    a.close(timeout=2)
    assert sink.seqs()[:4] == [1, 2, 3, 4] and sink.batches[3][0] != threading.get_ident()


def test_inline_and_queued_writes_keep_the_file_in_chain_order(trail: Trail) -> None:
    a = trail.open("file:required,database:best_effort")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(150):
                with a.audited(ctx(), "key.create", mutating=i % 2 == 0):
                    pass
                if i % 25 == 0:
                    a.note("alert", detail="queued between inline writes")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = a.keys()
    assert keys is not None
    a.close(timeout=5)                         # ends with a signed checkpoint
    assert errors == []
    seqs = [json.loads(line)["seq"] for line in trail.path.read_bytes().splitlines()]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 8 * (150 + 75 + 6)
    report = verify_files([trail.path], public_key=keys.public_raw)
    assert report.ok, report.problems


def test_an_inline_write_that_hangs_holds_only_its_own_thread(deps: Deps) -> None:
    sink = ThreadRecording()
    a = _auditor(deps, SinkConfig(sink, "file", inline=True), timeout=0.3)
    sink.hold.set()
    outcome: list[str] = []

    def hung() -> None:
        with a.audited(ctx(), "encrypt"):
            pass
        outcome.append("written")

    t = threading.Thread(target=hung)
    t.start()
    assert sink.holding.wait(5)
    started = time.monotonic()                 # others queue behind it and time out
    with pytest.raises(Unavailable), a.audited(ctx(), "key.create", mutating=True):
        pytest.fail("must not act")
    assert time.monotonic() - started < 1.5
    sink.release.set()
    t.join(5)
    assert outcome == ["written"]
    with a.audited(ctx(), "encrypt"):         # recovered
        pass
    a.close(timeout=2)
    assert sink.seqs() == sorted(sink.seqs()) and sink.seqs()[0] == 1
