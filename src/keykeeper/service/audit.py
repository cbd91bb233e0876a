"""The audit trail: one hash-chained, authenticated record per request (two for a
mutating one), written to every sink before the request is answered.

* **Chain.** Records are appended to this process's chain under one lock: ``seq``,
  ``prev`` and the ``hmac`` are computed there (keykeeper.audit.chain), then the record
  goes onto every sink's queue in chain order; writer threads do the I/O
  (keykeeper.audit.writer).
* **Fail closed.** A request waits (at most the sink timeout, default 2 s) until one of
  the *required* sinks has recorded its record; if none can, it fails with 503
  ``unavailable``. A mutating route first writes a ``request`` record and acts only once
  it is recorded; every route writes its ``response`` record and its answer is withheld
  (503) unless that is recorded. The REST endpoint waits on an asyncio future (the event
  loop is never blocked); :meth:`Auditor.audited` waits on a thread event.
* **Keys.** While unsealed, the audit keys are derived from the root key (custody's HKDF):
  records carry an HMAC, the bearer token and encryption-context values are recorded
  as ``hmac-sha256:`` HMACs, and checkpoints are signed. While sealed, records carry no
  HMAC and sensitive fields are left out; the next checkpoint covers them.
* **Checkpoints** (``audit.checkpoint``, Ed25519-signed) every ``checkpoint_seconds``
  (60), every ``checkpoint_records`` (10,000) records, at seal (a custody seal listener,
  before the root key is dropped), before a file rotation, at shutdown (:meth:`close`),
  and on request (:meth:`checkpoint_now`, ``POST /v1/audit/checkpoint``).
* **Alerts** (a sink failing or stalled, the audit file deleted or replaced, records
  dropped) are logged at ERROR, counted (``keykeeper_audit_alerts_total{kind}``) and
  recorded in the chain as ``audit.alert`` records.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from keykeeper.audit.chain import AuditKeys, Chain, ChainHead, encode_line
from keykeeper.audit.records import ALERT, CHECKPOINT, SEGMENT, AuditRecord
from keykeeper.audit.verify import line_hash
from keykeeper.audit.writer import (
    OK,
    PENDING,
    BatchSink,
    Entry,
    SinkWorker,
    Ticket,
    expire,
    settle,
)
from keykeeper.custody.keyring import Custody
from keykeeper.errors import FailedPrecondition, Sealed, Unavailable
from keykeeper.service.audit_db import AuditSearch
from keykeeper.service.audit_reads import AuditReads
from keykeeper.service.audit_scope import AuditScope, outcome_of
from keykeeper.service.context import RequestContext

__all__ = ["AuditScope", "AuditSink", "Auditor", "SinkConfig", "outcome_of"]

log = logging.getLogger("keykeeper.audit")
_UNAVAILABLE = "the audit trail cannot record this request; the operator is alerted"
RECENT_HASHES = 8192  # line hashes of this process's last records, for GET /v1/audit/head


class AuditSink(Protocol):
    """The simplest sink: one record at a time (in-process tests use it)."""

    def write(self, record: AuditRecord) -> None: ...


class SinkConfig(NamedTuple):
    sink: BatchSink | AuditSink
    name: str
    required: bool = True
    timeout: float | None = None     # None: the Auditor's timeout
    max_batch: int = 2000
    linger: float = 0.0              # seconds to gather a batch (best-effort sinks)
    max_queue: int = 100_000         # records held for the sink at most; beyond, dropped
    inline: bool = False             # a waiting thread may write it (SinkWorker.claim)


class _RecordSink:
    """Adapts a ``write(record)`` sink to batches."""

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    def write_batch(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            self._sink.write(entry.record)

    def close(self) -> None:
        close = getattr(self._sink, "close", None)
        if callable(close):
            close()


def default_node_id() -> str:
    return socket.gethostname() or "keykeeper"


class Auditor(AuditReads):
    """Appends records to this process's chain and fans them out to the sinks.

    ``sinks``: :class:`SinkConfig` values, or bare sinks (required). No sinks: auditing
    is off (``KEYKEEPER_AUDIT_SINKS=none``, for benchmarks only). ``custody``: where the
    audit keys come from (None: no HMACs, no checkpoints). ``on_alert(kind)``: counts an
    alert (metrics). ``files()``: this node's audit files, for :meth:`verify`.
    """

    def __init__(self, sinks: Sequence[SinkConfig | BatchSink | AuditSink],
                 clock: Callable[[], datetime], *, custody: Custody | None = None,
                 chain: Chain | None = None, timeout: float = 2.0,
                 checkpoint_seconds: float = 60.0, checkpoint_records: int = 10_000,
                 on_alert: Callable[[str], None] | None = None,
                 files: Callable[[], list[Path]] | None = None,
                 search: AuditSearch | None = None) -> None:
        self._clock = clock
        self._custody = custody
        self.chain = chain or Chain(default_node_id())
        self._start_head = self.chain.head()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._deferred: list[tuple[str, str]] = []
        self._on_alert = on_alert
        self._files = files
        self.search = search
        self._keys: AuditKeys | None = None
        self._since_checkpoint = 0
        self._checkpoint_records = checkpoint_records
        self._closed = False
        self._workers: list[SinkWorker] = []
        for i, given in enumerate(sinks):
            cfg = given if isinstance(given, SinkConfig) else SinkConfig(given,
                                                                         type(given).__name__)
            sink = cfg.sink if isinstance(cfg.sink, BatchSink) else _RecordSink(cfg.sink)
            self._workers.append(SinkWorker(
                sink, name=cfg.name, required=cfg.required, timeout=cfg.timeout or timeout,
                bit=1 << i, max_batch=cfg.max_batch, linger=cfg.linger,
                max_queue=cfg.max_queue, inline=cfg.inline,
                on_alert=self.alert))
        self._required = [w for w in self._workers if w.required]
        self.timeout = max((w.timeout for w in self._required), default=timeout)
        self._stalls: dict[str, float] = {}
        self._pending: list[Entry] = []       # appended, not yet handed to the sinks
        self._flush_scheduled = False
        self._outstanding: deque[Ticket] = deque()  # tickets waited for on an event loop
        self._recent: deque[str] = deque(maxlen=RECENT_HASHES)  # line hashes, up to chain.seq
        self._stop = threading.Event()
        # Called with each record after it is appended, outside the lock, in the appending
        # thread (the monitor: metrics, usage statistics, anomaly rules). A listener must
        # be quick and must not append records itself; its errors are logged and counted.
        self.listeners: list[Callable[[AuditRecord, RequestContext | None], None]] = []
        self.listener_errors = 0
        if self.enabled:
            if custody is not None:
                custody.on_seal(self._on_seal)
            threading.Thread(target=self._tick, args=(checkpoint_seconds,),
                             name="audit-timer", daemon=True).start()

    @property
    def enabled(self) -> bool:
        return bool(self._workers)

    # -- keys -------------------------------------------------------------------------------
    def keys(self) -> AuditKeys | None:
        """The audit keys while unsealed, else None."""
        custody = self._custody
        if custody is None or custody.sealed:
            self._keys = None
            return None
        keys = self._keys
        if keys is None:
            try:
                keys = self._keys = AuditKeys.derive(custody.derive)
            except Sealed:
                return None
        return keys

    # -- appending --------------------------------------------------------------------------
    def _append(self, operation: str, outcome: str, *, ctx: RequestContext | None = None,
                phase: str | None = None, error_code: str | None = None,
                detail: str | None = None, reason: str | None = None, sign: bool = False,
                loop: asyncio.AbstractEventLoop | None = None, track: bool = True,
                ) -> Entry:
        keys = self.keys()
        when = self._clock().isoformat(timespec="microseconds").replace("+00:00", "Z")
        fields: dict[str, Any] = {}
        if ctx is not None:
            fields = {"request_id": ctx.request_id, "interface": ctx.interface,
                      "principal": ctx.principal.name if ctx.principal else None,
                      "source": ctx.source, "namespace": ctx.namespace, "key_id": ctx.key_id,
                      "key_version": ctx.key_version, "items": ctx.items,
                      "failed_items": ctx.failed_items, "approval_id": ctx.approval_id,
                      "execution": ctx.execution, "on_behalf_of": ctx.on_behalf_of,
                      "allow_compromised": ctx.allow_compromised,
                      "destination_key_id": ctx.destination_key_id,
                      "wrapping_key_fingerprint": ctx.wrapping_key_fingerprint}
            if keys is not None:  # sealed: sensitive fields are left out, never in clear
                if ctx.token:
                    fields["token_hmac"] = keys.field(ctx.token)
                if ctx.encryption_context:
                    fields["context"] = {k: keys.field(v)
                                         for k, v in ctx.encryption_context.items()}
        if sign:
            if keys is None:
                raise Sealed("keykeeper is sealed: no checkpoint can be signed")
            fields["public_key"] = keys.public_b64
        checkpoint_due = schedule = False
        self._local.busy = True
        try:
            with self._lock:
                chain = self.chain
                seq = chain.seq + 1
                record = AuditRecord(chain.id, seq, chain.prev, when, operation, outcome,
                                     phase=phase, error_code=error_code, detail=detail,
                                     reason=reason, **fields)
                line = encode_line(record, keys, sign=sign)
                chain.advance(seq, line, checkpoint=sign)
                self._recent.append(chain.prev)
                ticket = self._ticket(loop) if track else None
                entry = Entry(record, line, ticket)
                self._pending.append(entry)
                if loop is not None and not self._flush_scheduled:
                    self._flush_scheduled = schedule = True
                if sign:
                    self._since_checkpoint = 0
                else:
                    self._since_checkpoint += 1
                    checkpoint_due = (keys is not None
                                      and self._since_checkpoint >= self._checkpoint_records)
        finally:
            self._local.busy = False
        if loop is None:
            # A thread that will wait for this record writes it to an idle inline sink
            # itself; records nobody waits for (notes, alerts, checkpoints) are queued, and
            # so is one appended on an event loop without its future (a cancelled REST
            # request's outcome): the event loop never writes a sink.
            self._flush(inline=track and asyncio._get_running_loop() is None)
        elif schedule:
            # Group commit: every record appended during this turn of the event loop goes
            # to the sinks at its end, in one batch (one wake-up of each writer thread).
            loop.call_soon(self._flush)
        if self._deferred:
            self._flush_deferred()
        if checkpoint_due:
            self.checkpoint("records")
        for listener in self.listeners:
            try:
                listener(record, ctx)
            except Exception:
                self.listener_errors += 1
                if self.listener_errors & (self.listener_errors - 1) == 0:  # 1, 2, 4, ...
                    log.exception("audit listener failed (%d failures)", self.listener_errors)
        return entry

    def _flush(self, inline: bool = False) -> None:
        """Hand the pending records to every sink's queue, in chain order; with
        ``inline`` (a thread that waits for them, never the event loop), write them
        itself to the first inline sink whose writer is idle (SinkWorker.claim)."""
        claimed: SinkWorker | None = None
        self._local.busy = True  # an alert raised in here is deferred, not appended
        try:
            with self._lock:
                batch, self._pending = self._pending, []
                self._flush_scheduled = False
                for worker in self._workers if batch else ():
                    if inline and claimed is None and worker.claim():
                        claimed = worker
                    elif not worker.put(batch) and worker.required:
                        settle(batch, worker.bit, False)
        except BaseException:
            if claimed is not None:
                claimed.unclaim()  # never leave the sink's write lock held
            raise
        finally:
            self._local.busy = False
        if claimed is not None:
            claimed.write_claimed(batch)
        if self._deferred:
            self._flush_deferred()

    def _ticket(self, loop: asyncio.AbstractEventLoop | None) -> Ticket:
        """A ticket counting on the required sinks that are not stalled (under the lock)."""
        now = time.monotonic()
        mask = 0
        for worker in self._required:
            if worker.stalled(now):
                since = worker.busy_since
                if since is not None and self._stalls.get(worker.name) != since:
                    self._stalls[worker.name] = since
                    self._deferred.append(("stalled", f"audit sink {worker.name} has not "
                                           f"finished a write for over {worker.timeout:g} s"))
            elif worker.has_room():
                mask |= worker.bit
        ticket = Ticket(mask, loop, now + self.timeout)
        if loop is not None and mask:
            self._outstanding.append(ticket)
        return ticket

    def _expire_overdue(self) -> None:
        """Fail the event-loop waits whose deadline passed (a stalled or slow sink)."""
        now = time.monotonic()
        overdue: list[Ticket] = []
        with self._lock:
            queue = self._outstanding
            while queue:
                ticket = queue[0]
                if ticket.state == PENDING:
                    if ticket.deadline > now:
                        break
                    overdue.append(ticket)
                queue.popleft()
        if overdue:
            expire(overdue)

    def _flush_deferred(self) -> None:
        with self._lock:
            pending, self._deferred = self._deferred, []
        for kind, detail in pending:
            self.alert(kind, detail)

    def record(self, ctx: RequestContext, operation: str, outcome: str = "success",
               error_code: str | None = None, *, phase: str | None = None,
               loop: asyncio.AbstractEventLoop | None = None) -> Entry:
        """Append the record of one request (not yet waited for)."""
        return self._append(operation, outcome, ctx=ctx, phase=phase, error_code=error_code,
                            loop=loop)

    def _failed(self, entry: Entry) -> Unavailable:
        """After a record could not be kept: note that the request was refused (no wait)."""
        rec = entry.record
        self._append(rec.operation, "error", error_code="unavailable", phase=rec.phase,
                     detail=f"request {rec.request_id} answered 503: its record (seq "
                     f"{rec.seq}) was not recorded in time", track=False)
        return Unavailable(_UNAVAILABLE)

    def wait(self, entry: Entry) -> None:
        """Block until a required sink recorded ``entry``; Unavailable after the timeout."""
        ticket = entry.ticket
        if ticket is not None and not ticket.wait(self.timeout):
            raise self._failed(entry)

    async def wait_async(self, entry: Entry) -> None:
        """As :meth:`wait`, on the event loop (the ticket must carry this loop's future)."""
        ticket = entry.ticket
        if ticket is None:
            return
        if ticket.state == PENDING and ticket.future is not None:
            ok = await ticket.future  # settled by a writer, or failed by the timer thread
        else:
            ok = ticket.state == OK
        if not ok:
            raise self._failed(entry)

    @contextmanager
    def audited(self, ctx: RequestContext, operation: str, *,
                mutating: bool = False) -> Iterator[None]:
        """Audit one call from a thread: a ``request`` record first when ``mutating`` (the
        body runs only once it is recorded), then the outcome. Raises Unavailable when a
        record cannot be kept."""
        if not self.enabled:
            yield
            return
        if mutating:
            self.wait(self.record(ctx, operation, "requested", phase="request"))
        try:
            yield
        except BaseException as exc:
            outcome, code = outcome_of(exc)
            self.wait(self.record(ctx, operation, outcome, code,
                                  phase="response" if mutating else None))
            raise
        self.wait(self.record(ctx, operation, phase="response" if mutating else None))

    def requires_store(self) -> bool:
        """True when a required sink writes into the key store (``database:required``): a
        caller holding the store's only writer (SQLite) must not wait for its records."""
        return any(getattr(w.sink, "in_key_store", False) for w in self._required)

    def scope(self, ctx: RequestContext, operation: str, enabled: bool = True) -> AuditScope:
        """The async audit scope of one REST request (see :class:`AuditScope`)."""
        return AuditScope(self, ctx, operation, enabled and self.enabled)

    # -- checkpoints and alerts -------------------------------------------------------------
    def checkpoint(self, reason: str) -> bool:
        """Sign the chain head now (not waited for). False while sealed or when off; True
        if written, or if the last record already is a checkpoint."""
        if not self.enabled or self._closed or self.keys() is None:
            return False
        with self._lock:
            if self.chain.seq and self.chain.checkpoint == self.chain.seq:
                return True
        try:
            self._append(CHECKPOINT, "success", reason=reason, sign=True, track=False)
        except Sealed:
            return False
        return True

    def checkpoint_now(self, ctx: RequestContext | None = None) -> ChainHead:
        """Sign the chain head now (``POST /v1/audit/checkpoint``, reason ``requested``; the
        record names the request of ``ctx``) and wait until a required sink has recorded
        it. Returns its chain, seq and line hash. FailedPrecondition when auditing is off,
        Sealed while sealed, Unavailable if it cannot be recorded in time."""
        if not self.enabled:
            raise FailedPrecondition("the audit trail is off (KEYKEEPER_AUDIT_SINKS=none)")
        if self._closed:
            raise Unavailable("the audit trail is shutting down")
        entry = self._append(CHECKPOINT, "success", ctx=ctx, reason="requested", sign=True)
        self.wait(entry)
        rec = entry.record
        return ChainHead(rec.chain, rec.seq, line_hash(entry.line), rec.seq)

    def note(self, operation: str, *, detail: str, reason: str | None = None,
             ctx: RequestContext | None = None) -> None:
        """Record an event that answers no request (``operation`` e.g. ``alert``; no
        principal), not waited for; with ``ctx``, an event of that request (its principal,
        request id, approval id). Nothing while auditing is off or closed."""
        if self.enabled and not self._closed:
            self._append(operation, "success", ctx=ctx, detail=detail, reason=reason,
                         track=False)

    def start_segment(self, detail: str) -> None:
        """Write the first record of a new chain segment, saying why there is one."""
        self._append(SEGMENT, "success", detail=detail, track=False)

    def _on_seal(self) -> None:
        self.checkpoint("seal")
        self._keys = None

    def _tick(self, checkpoint_seconds: float) -> None:
        """Fail overdue waits (every 50 ms at most) and write periodic checkpoints."""
        step = min(0.05, self.timeout / 4)
        next_checkpoint = time.monotonic() + checkpoint_seconds
        while not self._stop.wait(step):
            try:
                self._expire_overdue()
                if checkpoint_seconds > 0 and time.monotonic() >= next_checkpoint:
                    next_checkpoint += checkpoint_seconds
                    if self._since_checkpoint:
                        self.checkpoint("periodic")
            except Exception:
                log.exception("audit timer failed")

    def alert(self, kind: str, detail: str) -> None:
        """Log at ERROR, count, and record an ``audit.alert`` in the chain."""
        log.error("audit alert (%s): %s", kind, detail)
        if self._on_alert is not None:
            self._on_alert(kind)
        if not self.enabled or self._closed:
            return
        if getattr(self._local, "busy", False):
            # Raised while this thread appends (it holds the lock): record it right after.
            self._deferred.append((kind, detail))
            return
        self._append(ALERT, "error", error_code=kind, detail=detail, track=False)

    def close(self, timeout: float = 5.0) -> None:
        """Sign the chain head (``shutdown``), write what is queued, stop the threads."""
        if self._closed:
            return
        self._stop.set()
        self.checkpoint("shutdown")
        self._closed = True
        for worker in self._workers:
            if not worker.close(timeout):
                log.error("audit sink %s did not finish within %g s at shutdown",
                          worker.name, timeout)
