"""Sink writer threads: each sink drains its own queue on its own thread, in batches.

A record goes, in chain order, onto the queue of every sink; each writer thread takes
everything queued (up to ``max_batch``), hands it to its sink in one ``write_batch`` call,
and reports the outcome. One exception: an *inline* sink (the local audit file) whose
writer is idle -- nothing queued, nothing being written -- is written by the thread that
waits for the record itself (:meth:`SinkWorker.claim`), which saves the hand-off to the
writer thread and back (two thread wake-ups, most of the audit cost of a KMIP operation);
the sink's write lock keeps the file in chain order. A stalled sink (a hung
NFS mount, a syslog server that stops reading, a webhook that never answers) blocks only
its own thread; requests wait for their *required* sinks at most the sink timeout (see
keykeeper.service.audit), and a sink busy for longer than its timeout counts as failed
for new records at once.

:class:`Ticket` is one record's acknowledgement: done with success as soon as one of the
required sinks it counts on wrote it, done with failure once all of them failed. Waiters
are woken in batches: one ``call_soon_threadsafe`` per event loop and batch, or a
:class:`threading.Event` for a thread that waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from keykeeper.audit.records import AuditRecord

__all__ = ["BatchSink", "Entry", "SinkWorker", "Ticket", "expire", "settle"]

log = logging.getLogger("keykeeper.audit")

PENDING, OK, FAILED = 0, 1, 2

# Guards tickets' state and events (settle, expire, Ticket.wait).
_settle_lock = threading.Lock()


class Ticket:
    """Acknowledgement of one record by the required sinks it counts on (bit ``mask``);
    ``deadline`` (time.monotonic) is when a waiter gives up (see :func:`expire`).

    A thread's ticket makes its :class:`threading.Event` only when it has to block (under
    the settle lock, so a writer deciding it at the same moment either sees the event and
    sets it, or the waiter sees the decision): a record written inline, or already
    written by the time its thread waits, costs no event."""

    __slots__ = ("deadline", "event", "future", "loop", "mask", "state")

    def __init__(self, mask: int, loop: asyncio.AbstractEventLoop | None,
                 deadline: float = 0.0) -> None:
        self.mask = mask
        self.deadline = deadline
        self.state = PENDING if mask else FAILED
        self.loop = loop
        self.future: asyncio.Future[bool] | None = loop.create_future() if loop else None
        self.event: threading.Event | None = None

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds (threads only); True once written."""
        if self.state == PENDING:
            with _settle_lock:
                event = self.event
                if event is None and self.state == PENDING:
                    event = self.event = threading.Event()
            if event is not None:
                event.wait(timeout)
        return self.state == OK


class Entry:
    """One chained record: the struct, its exact JSON line (no newline), its ticket."""

    __slots__ = ("line", "record", "ticket")

    def __init__(self, record: AuditRecord, line: bytes, ticket: Ticket | None) -> None:
        self.record = record
        self.line = line
        self.ticket = ticket


@runtime_checkable
class BatchSink(Protocol):
    """A destination of audit lines. ``write_batch`` raises (OSError, or anything) when the
    batch was not recorded; it is only ever called from the sink's own thread."""

    def write_batch(self, entries: Sequence[Entry]) -> None: ...

    def close(self) -> None: ...


def _resolve(futures: list[tuple[asyncio.Future[bool], bool]]) -> None:
    for future, ok in futures:
        if not future.done():
            future.set_result(ok)


def settle(entries: Sequence[Entry], bit: int, ok: bool) -> None:
    """Record that the sink ``bit`` wrote (``ok``) or failed ``entries``; wake waiters whose
    ticket is now decided."""
    decided: list[Ticket] = []
    with _settle_lock:
        for entry in entries:
            ticket = entry.ticket
            if ticket is None or ticket.state != PENDING or not ticket.mask & bit:
                continue
            if ok:
                ticket.state = OK
            else:
                ticket.mask &= ~bit
                if ticket.mask:
                    continue
                ticket.state = FAILED
            decided.append(ticket)
    _wake(decided)


def expire(tickets: Sequence[Ticket]) -> None:
    """Fail the tickets still pending (their deadline passed) and wake their waiters."""
    decided: list[Ticket] = []
    with _settle_lock:
        for ticket in tickets:
            if ticket.state == PENDING:
                ticket.state = FAILED
                decided.append(ticket)
    _wake(decided)


def _wake(decided: list[Ticket]) -> None:
    """One ``call_soon_threadsafe`` per event loop for the whole list."""
    woken: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bool], bool]]] = {}
    events: list[threading.Event] = []
    for ticket in decided:
        if ticket.future is not None and ticket.loop is not None:
            woken.setdefault(ticket.loop, []).append((ticket.future, ticket.state == OK))
        elif ticket.event is not None:
            events.append(ticket.event)
    for loop, futures in woken.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_resolve, futures)
    for event in events:
        event.set()


_STOP = object()


class SinkWorker:
    """One sink, its queue and its writer thread.

    ``required``: requests wait for it (with the others required); ``timeout``: seconds a
    request waits, and how long a write may run before the sink counts as stalled;
    ``max_queue``: records held for it at most -- beyond, new ones are dropped for this
    sink (and alerted), so a dead sink cannot exhaust memory. ``linger``: seconds the
    writer waits after the first record of a batch, to gather more (best-effort sinks).
    ``inline``: a waiting thread may write a batch itself while the writer is idle
    (:meth:`claim`); only for a sink whose writes are quick local I/O (the audit file):
    a write that hangs holds that one thread, not the writer's queue of other requests.
    """

    def __init__(self, sink: BatchSink, *, name: str, required: bool, timeout: float,
                 bit: int = 0, max_batch: int = 2000, max_queue: int = 100_000,
                 linger: float = 0.0, inline: bool = False,
                 on_alert: Callable[[str, str], None] | None = None) -> None:
        self.sink, self.name, self.required, self.timeout = sink, name, required, timeout
        self.bit = bit
        self.linger = linger
        self.inline = inline and not linger
        # Held while a batch is written, by the writer thread or an inline writer: one
        # write at a time, in chain order.
        self._write_lock = threading.Lock()
        self._unwritten = 0  # records queued and not yet written (under _count_lock)
        self._closed = False  # set by close(): no inline write starts any more
        self.max_batch, self.max_queue = max_batch, max_queue
        self._on_alert = on_alert
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._queued = 0  # records queued for this sink (under _count_lock)
        self._count_lock = threading.Lock()
        self.busy_since: float | None = None
        self.failures = 0
        self.dropped = 0
        self.written = 0
        self.last_written: Entry | None = None
        self._last_log = 0.0
        self._thread = threading.Thread(target=self._run, name=f"audit-{name}", daemon=True)
        self._thread.start()

    def stalled(self, now: float) -> bool:
        """True while one write has run longer than the timeout."""
        busy = self.busy_since
        return busy is not None and now - busy > self.timeout

    def has_room(self) -> bool:
        return self._queued < self.max_queue

    def put(self, batch: list[Entry]) -> bool:
        """Queue ``batch`` (records in chain order, one wake-up of the writer); False -- and
        the records dropped for this sink -- if its queue is full."""
        with self._count_lock:
            full = self._queued >= self.max_queue
            if not full:
                self._queued += len(batch)
                self._unwritten += len(batch)
        if full:
            self.dropped += len(batch)
            if self.dropped == len(batch) or self.dropped % 10_000 < len(batch):
                self._alert("dropped", f"audit sink {self.name}: queue full "
                            f"({self.max_queue} records); {self.dropped} dropped")
            return False
        self._queue.put(batch)
        return True

    def _alert(self, kind: str, detail: str) -> None:
        if self._on_alert is not None:
            self._on_alert(kind, detail)
        else:
            log.error("%s", detail)

    def _run(self) -> None:
        q = self._queue
        stop = False
        while not stop:
            first = q.get()
            if first is _STOP:
                break
            assert isinstance(first, list)
            if self.linger:
                # Nobody waits for this sink: let records gather into larger batches (one
                # transaction or request per batch), and take the interpreter lock rarely.
                time.sleep(self.linger)
            # The lists are shared by every sink's queue: never change them, join copies.
            chunks: list[list[Entry]] = [first]
            size = len(first)
            while size < self.max_batch:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                assert isinstance(item, list)
                chunks.append(item)
                size += len(item)
            batch = first if len(chunks) == 1 else [e for chunk in chunks for e in chunk]
            with self._count_lock:
                self._queued -= size
            with self._write_lock:
                self._write(batch)
                with self._count_lock:
                    self._unwritten -= size

    def claim(self) -> bool:
        """Called under the Auditor's lock, in chain order: True -- and the write lock is
        now the caller's, to be released by :meth:`write_claimed` -- when the caller may
        write its batch itself: the sink is inline, nothing is queued or being written
        (so no earlier record can land after it). False: queue the batch (:meth:`put`)."""
        if not self.inline or not self._write_lock.acquire(blocking=False):
            return False
        if self._unwritten or self._closed:  # queued or taken, not yet written; or closed
            self._write_lock.release()
            return False
        return True

    def unclaim(self) -> None:
        """Give back a successful :meth:`claim` without writing (the caller failed)."""
        self._write_lock.release()

    def write_claimed(self, batch: list[Entry]) -> None:
        """Write ``batch`` on this thread after a successful :meth:`claim`, settle its
        tickets, and release the write lock."""
        try:
            self._write(batch)
        finally:
            self._write_lock.release()

    def _write(self, batch: list[Entry]) -> None:
        self.busy_since = time.monotonic()
        try:
            self.sink.write_batch(batch)
        except Exception as exc:
            ok = False
            self.failures += 1
            now = time.monotonic()
            if self.failures == 1 or now - self._last_log > 10.0:
                self._last_log = now
                self._alert("sink_failed", f"audit sink {self.name} failed to record "
                            f"{len(batch)} record(s): {type(exc).__name__}: {exc}")
        else:
            ok = True
            if self.failures:
                log.warning("audit sink %s recovered after %d failed batch(es)", self.name,
                            self.failures)
                self.failures = 0
            self.written += len(batch)
            self.last_written = batch[-1]
        finally:
            self.busy_since = None
        if self.required:
            settle(batch, self.bit, ok)

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is queued, stop the thread (waiting up to ``timeout`` s) and close the
        sink once an inline write still running has finished. No inline write starts after
        this is called: a later record is queued to the stopped thread, so its request
        fails closed. False if the thread or an inline write did not finish (a stalled
        sink): it is left behind, the sink open."""
        deadline = time.monotonic() + timeout
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive() or not self._write_lock.acquire(
                timeout=max(0.0, deadline - time.monotonic())):
            return False
        try:
            self.sink.close()
        finally:
            self._write_lock.release()
        return True
