"""Engines for SQLite (default, under the data directory) and PostgreSQL.

SQLite runs with WAL, foreign keys and ``secure_delete`` (so deleted wrapped
material is overwritten on disk, not left in free pages). PostgreSQL is selected
with ``postgresql+psycopg://...`` URLs; a ``?options=-csearch_path%3DNAME`` query
places keykeeper in a schema of its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

__all__ = ["make_engine", "sqlite_url"]


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'keykeeper.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "secure_delete=ON",
                   "busy_timeout=10000", "synchronous=NORMAL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _private_sqlite_file(url: str) -> None:
    """Create the database file readable by its owner only (SQLite gives its -wal and -shm
    files the same mode)."""
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:" and not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False},
                               pool_size=20, max_overflow=20, pool_timeout=10)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # As many connections as the thread pool has threads (anyio's default: 40), so a
    # storage-bound request never waits for a connection another request holds.
    return create_engine(url, pool_size=20, max_overflow=20, pool_timeout=10,
                         pool_pre_ping=True)
