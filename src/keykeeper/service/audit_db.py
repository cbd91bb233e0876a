"""The database audit sink and the audit query over its table (``GET /v1/audit``).

Every node over one PostgreSQL database writes its chains' records into ``audit_records``
(batched inserts on the sink's own thread), so an auditor can search the records of all
nodes at once; each row keeps the exact JSON line, so every chain stays verifiable. The
sink is best effort by default: the file is the record of truth, the table a searchable
copy that may lag by a batch or miss records written while the database was unreachable.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime

from keykeeper.audit.writer import Entry
from keykeeper.errors import InvalidArgument
from keykeeper.service.deps import Deps
from keykeeper.store.audit_records import (
    AuditCursor,
    AuditFilter,
    AuditRecordRepository,
    AuditRow,
    NewAuditRow,
)

__all__ = ["MAX_PAGE", "AuditFilter", "AuditSearch", "DatabaseAuditSink", "row_outcome"]

MAX_PAGE = 1000
DEFAULT_PAGE = 100


def row_outcome(outcome: str, error_code: str | None) -> str:
    """The ``outcome`` column: ``success``, ``pending``, or the error's code."""
    return outcome if outcome != "error" else (error_code or "error")


class DatabaseAuditSink:
    """Inserts each batch in one transaction of the key store (``Deps.transaction``)."""

    def __init__(self, deps: Deps, repository: AuditRecordRepository | None = None) -> None:
        self._d = deps
        self._repo = repository or AuditRecordRepository()

    def write_batch(self, entries: Sequence[Entry]) -> None:
        rows: list[NewAuditRow] = []
        for e in entries:
            r = e.record
            outcome = r.outcome if r.outcome != "error" else (r.error_code or "error")
            rows.append((r.chain, r.seq, r.time, r.operation, r.principal, outcome,
                         r.namespace, r.key_id, e.line.decode()))
        with self._d.transaction() as conn:
            self._repo.insert_many(conn, rows)

    def close(self) -> None:
        pass


def _encode_cursor(row: AuditRow) -> str:
    raw = json.dumps([row.time.isoformat(), row.chain, row.seq]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(token: str) -> AuditCursor:
    try:
        if len(token) > 1024:
            raise ValueError
        time, chain, seq = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        if not isinstance(chain, str) or not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError
        when = datetime.fromisoformat(time)
        if when.tzinfo is None:
            raise ValueError
        return AuditCursor(when, chain, seq)
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise InvalidArgument("page_token is not valid") from None


class AuditSearch:
    """Reads the ``audit_records`` table (all nodes' chains)."""

    def __init__(self, deps: Deps, repository: AuditRecordRepository | None = None) -> None:
        self._d = deps
        self._repo = repository or AuditRecordRepository()

    def search(self, flt: AuditFilter, page_size: int | None = None,
               page_token: str | None = None, *, newest_first: bool = True,
               ) -> tuple[list[AuditRow], str | None]:
        """One page of matching rows (newest first by default) and the token of the next
        page (None on the last). ``page_size`` 1..1000, default 100. Raises
        InvalidArgument for a bad size or token, Unavailable if the store is down."""
        size = DEFAULT_PAGE if page_size is None else page_size
        if not 1 <= size <= MAX_PAGE:
            raise InvalidArgument(f"page_size must be between 1 and {MAX_PAGE}")
        after = _decode_cursor(page_token) if page_token else None
        with self._d.reading() as conn:
            rows = self._repo.search(conn, flt, size + 1, after, newest_first=newest_first)
        if len(rows) > size:
            rows = rows[:size]
            return rows, _encode_cursor(rows[-1])
        return rows, None

    def head(self, chain: str) -> AuditRow | None:
        """The stored record of ``chain`` with the highest seq (None if none)."""
        with self._d.reading() as conn:
            return self._repo.head(conn, chain)

    def record(self, chain: str, seq: int) -> AuditRow | None:
        """The stored record ``seq`` of ``chain`` (None if not stored)."""
        with self._d.reading() as conn:
            return self._repo.get(conn, chain, seq)
