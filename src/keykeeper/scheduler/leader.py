"""Leader election: exactly one node of a cluster runs the scheduler's jobs.

* **PostgreSQL** (:class:`PgAdvisoryLeader`): a session-level ``pg_try_advisory_lock``
  held on a dedicated connection. The lock id is derived from ``current_database()`` and
  ``current_schema()`` (an MD5 of both, first 64 bits), so stores in different schemas
  of one database elect separately. A standby tries again every ``retry_seconds``; the
  leader checks its connection on every :meth:`check` and steps down if it is lost. A
  leader killed with ``kill -9`` loses the lock when PostgreSQL sees its connection close,
  so a standby takes over within seconds. (PostgreSQL docs, §13.3.5 Advisory Locks.)
* **SQLite** (:class:`FileLockLeader`): an exclusive ``flock`` on
  ``<data dir>/scheduler.lock``, so several uvicorn workers over one SQLite file elect one;
  the kernel drops it when the holder exits, however it exits.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text

__all__ = ["FileLockLeader", "Leader", "PgAdvisoryLeader", "leader_for"]

log = logging.getLogger("keykeeper.scheduler")

RETRY_SECONDS = 1.0
LOCK_FILE = "scheduler.lock"
_LOCK_ID = text("SELECT ('x' || substr(md5('keykeeper.scheduler:' || current_database() "
                "|| ':' || current_schema()), 1, 16))::bit(64)::bigint")


class Leader(Protocol):
    """Who leads. :meth:`check` is called on every scheduler tick: it keeps (and checks)
    a lock already held, or tries to take it, and answers whether this node leads."""

    @property
    def is_leader(self) -> bool: ...

    def check(self) -> bool: ...

    def release(self) -> None: ...


class PgAdvisoryLeader:
    """Leadership as a PostgreSQL session-level advisory lock on one dedicated connection."""

    def __init__(self, engine: Engine, retry_seconds: float = RETRY_SECONDS) -> None:
        self._engine = engine
        self._retry = retry_seconds
        self._conn: Connection | None = None
        self._lock_id: int | None = None
        self._next_try = 0.0

    @property
    def is_leader(self) -> bool:
        return self._conn is not None

    def check(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()
                return True
            except Exception:
                log.warning("scheduler: lost the leader connection; stepping down")
                self._drop(invalidate=True)
                self._next_try = time.monotonic() + self._retry
                return False
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self._retry
        conn: Connection | None = None
        try:
            conn = self._engine.connect()
            lock_id = int(conn.execute(_LOCK_ID).scalar_one())
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:id)"),
                                    {"id": lock_id}).scalar_one())
            conn.commit()
        except Exception:
            log.warning("scheduler: cannot reach PostgreSQL to take the leader lock")
            if conn is not None:
                conn.invalidate()
                conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn, self._lock_id = conn, lock_id
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": self._lock_id})
            self._conn.commit()
            self._drop(invalidate=False)
        except Exception:
            self._drop(invalidate=True)   # closing the session releases the lock too

    def _drop(self, *, invalidate: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if invalidate:
                conn.invalidate()   # never hand a session that may hold the lock to the pool
            conn.close()
        except Exception:  # noqa: S110 - the connection is gone either way
            pass


class FileLockLeader:
    """Leadership as an exclusive ``flock`` on a file (SQLite: one host, one data dir)."""

    def __init__(self, path: Path, retry_seconds: float = RETRY_SECONDS) -> None:
        self._path = path
        self._retry = retry_seconds
        self._fd: int | None = None
        self._next_try = 0.0

    @property
    def is_leader(self) -> bool:
        return self._fd is not None

    def check(self) -> bool:
        if self._fd is not None:
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        self._next_try = now + self._retry
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def leader_for(engine: Engine, data_dir: Path,
               retry_seconds: float = RETRY_SECONDS) -> PgAdvisoryLeader | FileLockLeader:
    """The election that fits the store: an advisory lock on PostgreSQL, else a file lock,
    ``scheduler.lock``, beside the SQLite database file (by default in ``data_dir``; beside
    the file, so that processes sharing one database always share one lock)."""
    if engine.dialect.name == "postgresql":
        return PgAdvisoryLeader(engine, retry_seconds)
    database = engine.url.database
    directory = (Path(database).resolve().parent if database and database != ":memory:"
                 else data_dir)
    return FileLockLeader(directory / LOCK_FILE, retry_seconds)
