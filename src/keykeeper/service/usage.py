"""Exact per-version counters of protect operations, with a hard limit held cluster-wide.

Every protect operation (an encrypt item, a data key, a signature, a MAC, an
encapsulation, rewrap's encrypt) takes one unit of its version's count *before* the
cryptographic operation runs. The stored ``key_versions.protect_count`` is the number of
units every node has reserved; each node reserves blocks of units from it with one atomic
conditional UPDATE that never passes the version's limit (granting only the remainder
near it: PostgreSQL ``UPDATE ... FROM (SELECT ... FOR UPDATE) RETURNING`` old and new
count; SQLite a read and a conditional UPDATE after taking the write lock), and hands
them out locally (a count per version, taken under its own small lock: O(1) memory
whatever the number of units held):

- a block starts at 1 unit and doubles on each refill while the version is busy (up to
  ``max_block``, 4096 by default), so a rarely used version writes its exact count at once
  and a busy one touches the store once per thousands of operations; once busy, the
  background thread reserves the next block when a quarter of the current one is left, so
  requests rarely wait for the store;
- a node returns the unused units of a version idle for ``idle`` seconds (1 s), and all of
  them at :meth:`UsageCounter.stop`, so the stored count is exact whenever nodes are idle
  or stopped. After a crash (kill -9) the units a node held stay counted: the count errs
  high, never low, and the limit still holds.

The limit is :func:`keykeeper.domain.lifecycle.usage_limit` (2^32 for AES-GCM and
ChaCha20-Poly1305 with random nonces, NIST SP 800-38D §8.3). When the primary version's
count reaches :func:`~keykeeper.domain.lifecycle.rotation_threshold` (90 % by default) the
same transaction moves ``keys.next_rotation_time`` to now and sets ``rotation_reason`` to
``usage``, and records a ``usage-threshold`` key event once per version; the scheduler then
rotates the key. A block never crosses the threshold early: it is cut just below it, so
the crossing happens when the use does (give or take what other nodes hold).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from sqlalchemy import update

from keykeeper.domain.keys import Key
from keykeeper.domain.lifecycle import rotation_threshold, usage_limit
from keykeeper.errors import FailedPrecondition, KeykeeperError
from keykeeper.service.deps import Deps
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.usage_store import (
    USAGE_EVENT,
    reserve_cas,
    reserve_pg,
    threshold_reached,
)
from keykeeper.store.schema import key_versions

__all__ = ["USAGE_EVENT", "UsageCounter", "limit_reached"]

log = logging.getLogger("keykeeper.usage")

_NO_LIMIT = 2 ** 62          # stands for "no limit" in the conditional UPDATE


def limit_reached(version: int, limit: int | None) -> FailedPrecondition:
    """The error of a protect operation refused at the version's hard limit."""
    return FailedPrecondition(
        f"key version {version} reached its usage limit of {limit} protect operations "
        "(NIST SP 800-38D §8.3); rotate the key")


class _Units:
    """A number of reserved units (a count, never a list: any number costs O(1) memory),
    with its own lock so a use never waits for a slot's refill in progress."""

    __slots__ = ("_lock", "_n")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n = 0

    def take(self, n: int) -> int:
        """Take up to ``n`` units (a unit goes to one taker); how many were taken."""
        with self._lock:
            got = min(n, self._n)
            self._n -= got
            return got

    def put(self, n: int) -> None:
        """Add ``n`` units (a refill or a refund)."""
        with self._lock:
            self._n += n

    def __len__(self) -> int:
        return self._n


class _Slot:
    """This node's unused reservation for one version: ``units`` counts them (a use takes
    one under the count's own lock, not the slot's); the slot's lock serialises refills,
    returns and metadata changes."""

    __slots__ = ("block", "dead", "key", "landed", "last_use", "limit", "lock", "low",
                 "prefetching", "touched", "units")

    def __init__(self, now: float) -> None:
        self.lock = threading.Lock()
        self.landed = threading.Condition(self.lock)  # a background refill finished
        self.units = _Units()
        self.block = 1
        self.touched = False    # used since the last sweep (cheaper than a clock per use)
        self.last_use = now     # the sweep that last saw it used (monotonic seconds)
        self.key: Key | None = None    # the metadata ``limit`` was read from
        self.limit: int | None = None  # the limit the units were reserved under
        self.dead = False  # dropped from the table (its units returned): look it up again
        self.low = 0       # below this many units, the background thread reserves more
        self.prefetching = False


class UsageCounter:
    """Per-version protect counters for one node (a :class:`~keykeeper.service.facade.
    Background`: :meth:`start` runs a thread returning idle reservations, :meth:`stop`
    returns everything).

    ``idle``: seconds after its last use at which a version's unused units go back;
    ``max_block``: the largest block reserved at once; ``interval``: seconds between the
    thread's sweeps; ``monotonic``: the time source for idleness (seconds).
    """

    def __init__(self, deps: Deps, lookup: KeyLookup, *, idle: float = 1.0,
                 max_block: int = 4096, interval: float = 0.25,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if max_block < 1:
            raise ValueError("max_block must be at least 1")
        self._d = deps
        self._lookup = lookup
        self._idle = idle
        self._max_block = max_block
        self._interval = interval
        self._mono = monotonic
        self._slots: dict[tuple[str, int], _Slot] = {}
        self._table_lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        # Busy versions running low, for the background thread to refill ahead of need:
        self._wanted: queue.SimpleQueue[tuple[Key, int, _Slot] | None] = queue.SimpleQueue()
        self._pg = deps.engine.dialect.name == "postgresql"

    # -- the request path -------------------------------------------------------------------
    def reserve(self, key: Key, version: int, n: int = 1) -> int:
        """Take ``n`` units of ``version``'s count before ``n`` protect operations.

        Returns how many were granted (``n``, or fewer when the limit leaves fewer: the
        caller refuses the rest with :func:`limit_reached`). Raises FailedPrecondition
        (:func:`limit_reached`) when none is left, Unavailable when the store is.
        """
        if self._d.in_batch():
            return self._reserve_in_batch(key, version, n)
        slot = self._slots.get((key.id, version))
        if n == 1 and slot is not None and slot.key is key:  # the common case: no slot lock
            units = slot.units
            if units.take(1):
                slot.touched = True
                if len(units) < slot.low and not slot.prefetching:
                    self._ask_prefetch(key, version, slot)
                return 1
        return self._reserve_slow(key, version, n)

    def _reserve_in_batch(self, key: Key, version: int, n: int) -> int:
        """In an all-or-nothing batch (a KMIP Undo batch): exactly ``n`` units, in the
        batch's own transaction, never through this node's shared reservations -- they
        vanish with a rollback, so no other request may use them, and the batch takes no
        slot lock (a request holding one may be waiting for the batch's store lock)."""
        got = 0
        while got < n:
            granted = self._reserve_stored(key, version, n - got)
            if granted == 0:
                if got == 0:
                    raise limit_reached(version, usage_limit(key))
                break
            got += granted
        return got

    def _reserve_slow(self, key: Key, version: int, n: int) -> int:
        got = 0
        limit = usage_limit(key)
        while got < n:
            slot = self._slot(key.id, version)
            with slot.lock:
                if slot.dead:
                    continue
                if slot.key is not key:  # fresh metadata: the limit may have changed
                    if slot.limit != limit:  # held units may be too many: give them back
                        back = slot.units.take(_NO_LIMIT)
                        if back:
                            self._return_stored(key.id, version, back)
                        slot.block = 1
                    slot.key, slot.limit = key, limit
                got += slot.units.take(n - got)
                slot.touched = True
                if got == n:
                    break
                # A background refill is on its way: wait for it rather than race it to the
                # store (near the limit it may hold the last units).
                if slot.prefetching and slot.landed.wait(1.0):
                    continue
                stopping = self._stopped.is_set()
                want = n - got if stopping else max(slot.block, n - got)
                granted = self._reserve_stored(key, version, want)
                if granted == 0:
                    if got == 0:
                        raise limit_reached(version, limit)
                    break
                if not stopping:
                    self._grow(slot)
                slot.units.put(granted)
        return got

    def _grow(self, slot: _Slot) -> None:
        """After a refill (slot locked): double the block; once the version is busy (a
        block of 64 or more) and the background thread runs, refill ahead of need."""
        slot.block = min(self._max_block, slot.block * 2)
        slot.low = slot.block // 4 if slot.block >= 64 and self._thread is not None else 0

    def _ask_prefetch(self, key: Key, version: int, slot: _Slot) -> None:
        with slot.lock:
            if not slot.prefetching and not slot.dead:
                slot.prefetching = True
                self._wanted.put((key, version, slot))

    def _prefetch(self, key: Key, version: int, slot: _Slot) -> None:
        """In the background thread: reserve a block for a busy version before it runs
        out, outside its lock, so requests do not wait for the store."""
        granted = 0
        try:
            if not slot.dead and slot.key is key:
                granted = self._reserve_stored(key, version, slot.block)
        except KeykeeperError:
            log.warning("could not reserve uses of %s v%d ahead of need", key.id, version)
        with slot.lock:
            slot.prefetching = False
            slot.landed.notify_all()
            if not granted:
                return
            if not slot.dead and slot.key is key:  # still the metadata it was reserved under
                slot.units.put(granted)
                self._grow(slot)
                return
        self._return_stored(key.id, version, granted)

    def refund(self, key_id: str, version: int, n: int) -> None:
        """Give back ``n`` units whose operations did not happen (an item refused by the
        algorithm, a failed signature): they return to this node's reservation."""
        if n <= 0:
            return
        slot = self._slots.get((key_id, version))
        if slot is not None and not self._d.in_batch():  # a batch's units were never pooled
            with slot.lock:
                if not slot.dead:
                    slot.units.put(n)
                    return
        self._return_stored(key_id, version, n)

    def held(self, key_id: str, version: int) -> int:
        """Units of ``version`` this node has reserved but not used (0 if none): a view of
        the count subtracts them (exact on a single node, high by other nodes' holdings)."""
        slot = self._slots.get((key_id, version))
        return 0 if slot is None or slot.dead else len(slot.units)

    # -- returning reservations ---------------------------------------------------------------
    def return_idle(self) -> int:
        """Return the unused units of every version idle for ``idle`` seconds, and forget
        empty idle versions. Returns the number of units given back."""
        return self._sweep(idle=True)

    def return_all(self) -> int:
        """Return every unused unit (the stored counts become exact)."""
        return self._sweep(idle=False)

    def _sweep(self, idle: bool) -> int:
        now = self._mono()
        with self._table_lock:
            slots = list(self._slots.items())
        returned = 0
        for (key_id, version), slot in slots:
            with slot.lock:
                if idle:
                    if slot.touched:  # used since the last sweep: not idle
                        slot.touched, slot.last_use = False, now
                        continue
                    if now - slot.last_use < self._idle:
                        continue
                units = slot.units.take(_NO_LIMIT)
                slot.block, slot.low = 1, 0
                if units:
                    try:
                        self._return_stored(key_id, version, units)
                        returned += units
                    except KeykeeperError:
                        slot.units.put(units)  # kept; retried next sweep
                        log.warning("could not return %d reserved uses of %s v%d; will retry",
                                    units, key_id, version)
                        continue
                slot.dead = True
            with self._table_lock:
                if self._slots.get((key_id, version)) is slot:
                    del self._slots[(key_id, version)]
        return returned

    def start(self) -> None:
        """Start the background thread: it returns idle reservations every ``interval``
        seconds and refills busy versions ahead of need."""
        if self._thread is not None:
            return
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="keykeeper-usage",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and return every unused unit. Reservations made after this go
        to the store one operation at a time (exact, nothing held)."""
        self._stopped.set()
        if self._thread is not None:
            self._wanted.put(None)
            self._thread.join()
            self._thread = None
        while not self._wanted.empty():  # refills never made
            wanted = self._wanted.get()
            if wanted is not None:
                with wanted[2].lock:
                    wanted[2].prefetching = False
                    wanted[2].landed.notify_all()
        self.return_all()

    def _run(self) -> None:
        next_sweep = time.monotonic() + self._interval
        while not self._stopped.is_set():
            try:
                wanted = self._wanted.get(timeout=max(0.0, next_sweep - time.monotonic()))
            except queue.Empty:
                wanted = None
            try:
                if wanted is not None:
                    self._prefetch(*wanted)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self._interval
                    self.return_idle()
            except Exception:  # keep going; a failed return is retried by the next sweep
                log.exception("usage counter background work failed")

    def _slot(self, key_id: str, version: int) -> _Slot:
        slot = self._slots.get((key_id, version))
        if slot is None:
            with self._table_lock:
                slot = self._slots.setdefault((key_id, version), _Slot(self._mono()))
        return slot

    # -- the store ------------------------------------------------------------------------
    def _reserve_stored(self, key: Key, version: int, want: int) -> int:
        """Add up to ``want`` to the stored count without passing the limit (nor, below
        it, the rotation threshold); the number added (0 at the limit)."""
        limit = usage_limit(key)
        cap = _NO_LIMIT if limit is None else limit
        threshold = rotation_threshold(key) if version == key.primary_version else None
        # Blocks stop one short of the threshold, so the unit that reaches it is reserved
        # alone, when an operation needs it: the crossing coincides with the use.
        stop_at = cap if threshold is None else threshold - 1
        now = self._d.clock()
        with self._d.transaction() as conn:
            if self._pg:
                old, new = reserve_pg(conn, key.id, version, want, cap, stop_at)
            else:
                old, new = reserve_cas(conn, key.id, version, want, cap, stop_at)
            crossed = threshold is not None and old < threshold <= new
            if crossed:
                assert limit is not None and threshold is not None
                threshold_reached(self._d, conn, key, version, threshold, limit, now)
        if crossed:
            self._lookup.forget(key)
        return new - old

    def _return_stored(self, key_id: str, version: int, units: int) -> None:
        kv = key_versions
        with self._d.transaction() as conn:
            conn.execute(update(kv).where(kv.c.key_id == key_id, kv.c.version == version)
                         .values(protect_count=kv.c.protect_count - units))
