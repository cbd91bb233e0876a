"""The explicit set of collaborators every service object shares (built in config.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DataError, OperationalError, SQLAlchemyError

from keykeeper.custody.keyring import Custody
from keykeeper.errors import FailedPrecondition, InvalidArgument, KeykeeperError, Unavailable
from keykeeper.store.identity import IdentityRepository
from keykeeper.store.keys import KeyRepository
from keykeeper.store.system import SystemRepository

__all__ = ["AllOrNothing", "Deps", "NotUndoable", "utcnow"]

log = logging.getLogger("keykeeper.store")


class NotUndoable(FailedPrecondition):
    """An operation with an effect outside the key store that a rollback cannot take
    back (destroying an HSM object), asked for inside an all-or-nothing batch. KMIP:
    Feature_Not_Supported (KMIP 2.1 §8.2, Batch Error Continuation Option Undo)."""

    kmip_reason = "Feature_Not_Supported"


class AllOrNothing:
    """One open transaction around several operations (a KMIP batch with the Batch Error
    Continuation Option Undo): every ``Deps.transaction()`` of this thread's context
    becomes a savepoint of it, every ``Deps.reading()`` reads through it, so a later
    operation sees an earlier one's changes. ``undo()`` marks it for rollback.

    Effects outside the store register with ``on_rollback`` (run after a rollback: e.g.
    drop an HSM object made for a key that no longer exists, forget in-memory counts)
    and ``after_commit`` (run after the commit: e.g. SQLite's WAL checkpoint after an
    erasure)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.undone = False
        self._rollback: list[Callable[[], None]] = []
        self._commit: list[Callable[[], object]] = []

    def undo(self) -> None:
        self.undone = True

    def in_batch(self) -> bool:
        """True inside :meth:`all_or_nothing`: what is read may still be rolled back, so
        it must not enter a cache other requests read."""
        return _BATCH.get() is not None

    def on_rollback(self, fn: Callable[[], None]) -> None:
        self._rollback.append(fn)

    def after_commit(self, fn: Callable[[], object]) -> None:
        self._commit.append(fn)

    def finish(self) -> None:
        """Run the rollback or the commit hooks (once the store's lock is released)."""
        hooks, self._rollback, self._commit = (self._rollback if self.undone
                                               else self._commit), [], []
        for fn in hooks:
            try:
                fn()
            except Exception:
                log.exception("a clean-up after an all-or-nothing batch failed")


_BATCH: ContextVar[AllOrNothing | None] = ContextVar("keykeeper_all_or_nothing",
                                                     default=None)


# A value the database cannot hold (a NUL character in text on PostgreSQL, an integer
# beyond 64 bits) is the caller's error, not the store's: 400, not 503.
def _bad_value() -> InvalidArgument:
    return InvalidArgument("a value is out of range, or holds characters the key store "
                           "cannot keep (NUL)")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    engine: Engine
    custody: Custody
    clock: Callable[[], datetime] = utcnow
    keys: KeyRepository = field(default_factory=KeyRepository)
    system: SystemRepository = field(default_factory=SystemRepository)
    identity: IdentityRepository = field(default_factory=IdentityRepository)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction per mutating operation; storage errors become ``unavailable``.

        SQLite allows one writer at a time, so writers in this process take a lock first
        instead of failing on ``database is locked``. Inside :meth:`all_or_nothing` (same
        thread, same context) it is a savepoint of the batch's transaction instead.
        """
        batch = _BATCH.get()
        if batch is not None:
            with _mapped(), batch.conn.begin_nested():
                yield batch.conn
            return
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite:
            self._write_lock.acquire()
        try:
            with _mapped(), self.engine.begin() as conn:
                yield conn
        finally:
            if sqlite:
                self._write_lock.release()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        batch = _BATCH.get()
        if batch is not None:
            with _mapped(refused=_UNAVAILABLE):
                yield batch.conn
            return
        with _mapped(refused=_UNAVAILABLE), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def all_or_nothing(self) -> Iterator[AllOrNothing]:
        """Run the block's operations in one transaction (see :class:`AllOrNothing`):
        committed at the end unless the block called ``undo()`` or raised, else rolled
        back; then the matching hooks run. Not nestable. Raises Unavailable if the commit
        fails (nothing was changed then, and the rollback hooks have run)."""
        if _BATCH.get() is not None:
            raise RuntimeError("all-or-nothing batches do not nest")
        sqlite = self.engine.dialect.name == "sqlite"
        batch: AllOrNothing | None = None
        if sqlite:
            self._write_lock.acquire()
        try:
            with _mapped(), self.engine.connect() as conn:
                trans = conn.begin()
                if sqlite:
                    # pysqlite begins a transaction only before DML: the first SAVEPOINT
                    # would otherwise open the transaction, and its RELEASE commit it.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                batch = AllOrNothing(conn)
                token = _BATCH.set(batch)
                try:
                    yield batch
                except BaseException:
                    batch.undone = True
                    raise
                finally:
                    _BATCH.reset(token)
                    if batch.undone:
                        trans.rollback()
                    else:
                        try:
                            trans.commit()
                        except BaseException:
                            batch.undone = True
                            raise
        finally:
            if sqlite:
                self._write_lock.release()
            if batch is not None:
                batch.finish()

    def in_batch(self) -> bool:
        """True inside :meth:`all_or_nothing`: what is read may still be rolled back, so
        it must not enter a cache other requests read."""
        return _BATCH.get() is not None

    def on_rollback(self, fn: Callable[[], None]) -> None:
        """Inside :meth:`all_or_nothing`: run ``fn`` if the batch is rolled back (clean up
        an effect outside the store). Outside one: nothing (the caller's own transaction
        has committed)."""
        batch = _BATCH.get()
        if batch is not None:
            batch.on_rollback(fn)

    def after_commit(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` once the changes made so far are committed: now, or inside
        :meth:`all_or_nothing` after its commit (never, if it rolls back)."""
        batch = _BATCH.get()
        if batch is None:
            fn()
        else:
            batch.after_commit(fn)

    def refuse_in_batch(self, what: str) -> None:
        """Raise NotUndoable inside :meth:`all_or_nothing` (``what`` cannot be undone)."""
        if _BATCH.get() is not None:
            raise NotUndoable(f"{what} cannot be undone: it is refused in a batch with "
                              "the Batch Error Continuation Option Undo")


_UNAVAILABLE = "the key store is unavailable; retry later"


@contextmanager
def _mapped(refused: str = "the key store refused the change; retry later"
            ) -> Iterator[None]:
    """Storage errors as the caller's errors: a value the store cannot hold is
    InvalidArgument; a lost connection Unavailable; any other refusal Unavailable with
    ``refused`` (a read says the store is unavailable, a write that it refused)."""
    try:
        yield
    except KeykeeperError:
        raise
    except (DataError, OverflowError):
        raise _bad_value() from None
    except OperationalError:
        raise Unavailable(_UNAVAILABLE) from None
    except SQLAlchemyError:
        raise Unavailable(refused) from None
