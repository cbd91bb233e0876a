"""Adversarial tests of the inline audit-file write (a waiting thread writes its record to
the idle audit file itself, SinkWorker.claim / write_claimed): shutdown while an inline
write runs or after it, the event loop never writing inline, and chain order under many
threads with rotation, sealing and queued records -- over real audit files."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from keykeeper.audit.file_sink import FileAuditSink, node_files
from keykeeper.audit.verify import verify_files
from keykeeper.audit.writer import Entry
from keykeeper.custody.keyring import Custody
from keykeeper.errors import Unavailable
from keykeeper.service.audit import Auditor, SinkConfig
from keykeeper.service.deps import Deps, utcnow
from tests.audit.conftest import Trail, ctx


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


class WatchedFile(FileAuditSink):
    """The real audit file, noting which thread wrote each batch; ``pause`` holds the next
    write (after it began) until ``go`` is set; ``closed_while_writing`` if :meth:`close`
    ran during a write."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writers: list[tuple[int, list[str]]] = []
        self.pause, self.paused, self.go = threading.Event(), threading.Event(), \
            threading.Event()
        self.writing = False
        self.closed_while_writing = False

    def write_batch(self, entries: Sequence[Entry]) -> None:
        self.writing = True
        try:
            if self.pause.is_set():
                self.pause.clear()
                self.paused.set()
                self.go.wait(10)
            super().write_batch(entries)
            self.writers.append((threading.get_ident(),
                                 [e.record.operation for e in entries]))
        finally:
            self.writing = False

    def close(self) -> None:
        self.closed_while_writing |= self.writing
        super().close()


def _inline_auditor(deps: Deps, sink: WatchedFile, timeout: float = 0.3) -> Auditor:
    return Auditor([SinkConfig(sink, "file", inline=True)], utcnow, custody=deps.custody,
                   timeout=timeout, checkpoint_seconds=0)


def test_a_request_after_close_fails_closed_and_nothing_follows_the_shutdown_checkpoint(
        trail: Trail) -> None:
    a = trail.open(timeout=0.3)
    with a.audited(ctx(), "encrypt"):
        pass
    a.close(timeout=2)                 # signs the head; the slot is released
    before = trail.path.read_bytes()
    # A KMIP connection thread still serving after shutdown: its sink is closed, so its
    # record cannot be kept (as before the inline path: queued to a stopped writer).
    with pytest.raises(Unavailable), a.audited(ctx(), "key.create", mutating=True):
        pytest.fail("must not act after the audit trail closed")
    time.sleep(0.1)
    assert trail.path.read_bytes() == before
    assert _records(trail.path)[-1]["reason"] == "shutdown"
    assert "reopened" not in trail.alerts


def test_close_waits_for_an_inline_write_in_flight(deps: Deps, tmp_path: Path) -> None:
    sink = WatchedFile(tmp_path / "audit.log")
    a = _inline_auditor(deps, sink)
    with a.audited(ctx(), "encrypt"):
        pass
    deps.custody.seal()                # sealed: close() queues no shutdown checkpoint
    deadline = time.monotonic() + 5    # the seal's checkpoint, queued, is written first
    while len(_records(sink.path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    sink.pause.set()
    outcome: list[str] = []

    def request() -> None:
        try:
            with a.audited(ctx(), "encrypt"):
                pass
            outcome.append("answered")
        except Unavailable:
            outcome.append("unavailable")

    t = threading.Thread(target=request)
    t.start()
    assert sink.paused.wait(5)         # the inline write has begun
    closer = threading.Thread(target=a.close, kwargs={"timeout": 3})
    closer.start()
    time.sleep(0.3)                    # close() runs while the write is in flight
    sink.go.set()
    t.join(5)
    closer.join(5)
    assert not sink.closed_while_writing, "the sink was closed under a running write"
    assert outcome == ["answered"]
    assert [r["seq"] for r in _records(sink.path)] == [1, 2, 3]


def test_a_cancelled_rest_request_is_not_written_on_the_event_loop(
        deps: Deps, tmp_path: Path) -> None:
    sink = WatchedFile(tmp_path / "audit.log")
    a = _inline_auditor(deps, sink)

    async def cancelled_request() -> int:
        try:
            async with a.scope(ctx(), "encrypt"):
                raise asyncio.CancelledError  # the client went away
        except asyncio.CancelledError:
            pass
        return threading.get_ident()

    loop_thread = asyncio.run(cancelled_request())
    deadline = time.monotonic() + 5
    while not sink.writers and time.monotonic() < deadline:
        time.sleep(0.01)
    a.close(timeout=2)
    assert sink.writers and sink.writers[0][1] == ["encrypt"]
    assert sink.writers[0][0] != loop_thread, "the event loop wrote the audit file"


def test_many_threads_rotation_seal_and_queued_records_keep_one_verifiable_chain(
        deps: Deps, tmp_path: Path) -> None:
    root = os.urandom(32)
    custody = Custody()
    custody.unseal(root)
    trail = Trail(Deps(engine=deps.engine, custody=custody, clock=utcnow),
                  tmp_path / "audit" / "audit.log")
    a = trail.open(max_bytes=6000)
    keys = a.keys()
    assert keys is not None
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(60):
                try:
                    with a.audited(ctx(), "key.create", mutating=i % 3 == 0):
                        pass
                except Unavailable:
                    errors.append(AssertionError("a healthy file refused a record"))
                if i % 10 == n % 10:
                    a.note("alert", detail=f"queued by worker {n}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    def sealer() -> None:
        while not stop.is_set():
            custody.seal()             # the seal listener queues a checkpoint
            time.sleep(0.01)
            custody.unseal(root)
            time.sleep(0.03)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    sealing = threading.Thread(target=sealer)
    sealing.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stop.set()
    sealing.join(5)
    if custody.sealed:
        custody.unseal(root)
    a.close(timeout=5)
    assert errors == []
    files = node_files(trail.path)
    assert len(files) >= 3                       # it rotated
    seqs = sorted(int(r["seq"]) for f in files for r in _records(f))  # type: ignore[call-overload]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 8 * (60 + 20 + 6)
    report = verify_files(files, public_key=keys.public_raw)
    assert report.ok, report.problems
