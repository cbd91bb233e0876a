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
import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime

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
INT64 = (-(1 << 63), (1 << 63) - 1)  # a BIGINT column (seq): larger values are refused


def row_outcome(outcome: str, error_code: str | None, execution: str | None = None) -> str:
    """The ``outcome`` column: ``success``, ``pending``, ``requested``, or the error's code.
    The approving call that ran an approved request which failed (``execution``
    ``failed:<code>``) is searched as that failure: ``outcome=error`` finds it."""
    if outcome == "success" and execution is not None and execution.startswith("failed:"):
        return execution.removeprefix("failed:") or "error"
    return outcome if outcome != "error" else (error_code or "error")


class DatabaseAuditSink:
    """Inserts each batch in one transaction of the key store (``Deps.transaction``)."""

    in_key_store = True  # Auditor.requires_store

    def __init__(self, deps: Deps, repository: AuditRecordRepository | None = None) -> None:
        self._d = deps
        self._repo = repository or AuditRecordRepository()

    def write_batch(self, entries: Sequence[Entry]) -> None:
        rows: list[NewAuditRow] = []
        for e in entries:
            r = e.record
            outcome = row_outcome(r.outcome, r.error_code, r.execution)
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
    """The position a page token holds. Every value must fit the table's columns -- a
    seq in the signed 64-bit range, a chain without NUL, a time in years 1..9999 in UTC
    -- else the database would fail on it: InvalidArgument."""
    try:
        if len(token) > 1024:
            raise ValueError
        time, chain, seq = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        if (not isinstance(chain, str) or "\x00" in chain or not isinstance(seq, int)
                or isinstance(seq, bool) or not INT64[0] <= seq <= INT64[1]):
            raise ValueError
        when = datetime.fromisoformat(time)
        if when.tzinfo is None:
            raise ValueError
        return AuditCursor(when.astimezone(UTC), chain, seq)
    except (ValueError, TypeError, UnicodeError, binascii.Error, OverflowError):
        raise InvalidArgument("page_token is not valid") from None


def _check_filter(flt: AuditFilter) -> AuditFilter:
    """``flt`` with its times in UTC; InvalidArgument for a value no column can hold (a NUL
    character, which PostgreSQL text refuses; a time outside years 1..9999 in UTC)."""
    for f in dataclasses.fields(flt):
        value = getattr(flt, f.name)
        if isinstance(value, str) and "\x00" in value:
            raise InvalidArgument(f"{f.name} must not contain NUL characters")
    return dataclasses.replace(flt, since=_utc(flt.since, "since"),
                               until=_utc(flt.until, "until"))


def _utc(when: datetime | None, name: str) -> datetime | None:
    if when is None:
        return None
    if when.tzinfo is None:
        raise InvalidArgument(f"{name} must carry a time zone")
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise InvalidArgument(f"{name} must be between years 1 and 9999 in UTC") from None


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
        flt = _check_filter(flt)
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
