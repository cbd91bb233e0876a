"""Repository of the ``audit_records`` table: the database audit sink and the audit query.

Each row is one record of one node's chain: ``(chain, seq)`` is the key, ``record`` the
exact JSON line (so rows can be verified like the file), and a few columns are copied out
of it for searching. ``outcome`` holds ``success``, ``pending``, ``requested`` or the error code
(for an approving call whose execution failed, the execution's code: service/audit_db.py).
Rows are only ever inserted; a row already present (the same chain and seq) is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from keykeeper.store.convert import utc
from keykeeper.store.schema import audit_records

__all__ = ["AuditCursor", "AuditFilter", "AuditRecordRepository", "AuditRow", "NewAuditRow"]

OUTCOMES_NOT_ERROR = ("success", "pending", "requested")


@dataclass(frozen=True, slots=True)
class AuditRow:
    chain: str
    seq: int
    time: datetime
    record: str          # the exact JSON line


# A row to insert, in _COLUMNS order: chain, seq, time (RFC 3339 UTC, e.g.
# "2026-11-29T10:55:17.941986Z"), operation, principal, outcome (success, pending,
# requested or the error code), namespace, key_id, and the record's exact JSON line.
NewAuditRow = tuple[str, int, str, str, "str | None", str, "str | None", "str | None", str]

_COLUMNS = ("chain", "seq", "time", "operation", "principal", "outcome", "namespace",
            "key_id", "record")
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class AuditCursor:
    """Position after which a page continues (time, chain, seq of its last row)."""

    time: datetime
    chain: str
    seq: int


@dataclass(frozen=True, slots=True)
class AuditFilter:
    principal: str | None = None
    key_id: str | None = None
    operation: str | None = None     # exact, or a prefix ending in "*" ("key.*")
    outcome: str | None = None       # "success", "pending", "error" (any error) or a code
    chain: str | None = None
    request_id: str | None = None
    approval_id: str | None = None
    execution: str | None = None     # "executed", "failed" (any failure) or "failed:<code>"
    since: datetime | None = None    # inclusive
    until: datetime | None = None    # exclusive


def _conditions(flt: AuditFilter) -> list[ColumnElement[bool]]:
    c = audit_records.c
    found: list[ColumnElement[bool]] = []
    if flt.principal is not None:
        found.append(c.principal == flt.principal)
    if flt.key_id is not None:
        found.append(c.key_id == flt.key_id)
    if flt.operation is not None:
        if flt.operation.endswith("*"):
            prefix = flt.operation[:-1].replace("\\", "\\\\").replace("%", "\\%") \
                .replace("_", "\\_")
            found.append(c.operation.like(prefix + "%", escape="\\"))
        else:
            found.append(c.operation == flt.operation)
    if flt.outcome == "error":
        found.append(c.outcome.not_in(OUTCOMES_NOT_ERROR))
    elif flt.outcome is not None:
        found.append(c.outcome == flt.outcome)
    if flt.chain is not None:
        found.append(c.chain == flt.chain)
    if flt.request_id is not None:
        # Not a column: the id is inside the line, as "request_id":"<id>".
        found.append(c.record.contains(f'"request_id":"{flt.request_id}"'))
    if flt.approval_id is not None:
        found.append(c.record.contains(f'"approval_id":"{flt.approval_id}"', autoescape=True))
    if flt.execution is not None:
        # "failed" matches every failure: the prefix "failed:" of the value.
        value = '"execution":"' + flt.execution + (":" if flt.execution == "failed" else '"')
        found.append(c.record.contains(value, autoescape=True))
    if flt.since is not None:
        found.append(c.time >= flt.since)
    if flt.until is not None:
        found.append(c.time < flt.until)
    return found


def _sqlite_time(value: str) -> str:
    if len(value) == 27 and value[10] == "T" and value[26] == "Z":
        return value[:10] + " " + value[11:26]
    when = datetime.fromisoformat(value)
    when = when.astimezone(UTC) if when.tzinfo else when
    return when.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class AuditRecordRepository:
    def insert_many(self, conn: Connection, rows: Sequence[NewAuditRow]) -> None:
        """Insert rows; rows already stored (same chain and seq) are skipped.

        One multi-row ``INSERT`` per 500 rows, sent as plain SQL with the values as given:
        SQLite then steps once per statement instead of once per row, and next to no
        Python runs per row -- this runs on a sink thread beside the request threads, and
        every bit of Python it runs holds the interpreter lock they need.
        """
        if not rows:
            return
        sqlite_ = conn.dialect.name == "sqlite"
        mark = "?" if sqlite_ else "%s"
        one = "(" + ",".join([mark] * len(_COLUMNS)) + ")"
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            params: list[Any] = []
            for row in chunk:
                params.extend(row)
            if sqlite_:  # SQLAlchemy's SQLite DateTime text: "YYYY-MM-DD HH:MM:SS.ffffff"
                for i in range(2, len(params), len(_COLUMNS)):
                    params[i] = _sqlite_time(params[i])
            sql = (f"INSERT INTO audit_records ({', '.join(_COLUMNS)}) VALUES "  # noqa: S608
                   f"{','.join([one] * len(chunk))} ON CONFLICT DO NOTHING")  # constants only
            conn.exec_driver_sql(sql, tuple(params))

    def search(self, conn: Connection, flt: AuditFilter, limit: int,
               after: AuditCursor | None = None, *, newest_first: bool = True,
               ) -> list[AuditRow]:
        """Rows matching ``flt``, newest first (or oldest first), at most ``limit``,
        continuing after ``after``. Order: time, then chain, then seq."""
        c = audit_records.c
        conds = _conditions(flt)
        key = tuple_(c.time, c.chain, c.seq)
        if after is not None:
            at = tuple_(after.time, after.chain, after.seq)
            # Row-value comparison is portable to SQLite >= 3.15 and PostgreSQL.
            conds.append(key < at if newest_first else key > at)
        order = (c.time.desc(), c.chain.desc(), c.seq.desc()) if newest_first else \
            (c.time.asc(), c.chain.asc(), c.seq.asc())
        stmt = select(c.chain, c.seq, c.time, c.record).where(*conds) \
            .order_by(*order).limit(limit)
        return [AuditRow(r.chain, r.seq, utc(r.time) or r.time, r.record)
                for r in conn.execute(stmt)]

    def head(self, conn: Connection, chain: str) -> AuditRow | None:
        """The row with the highest seq of ``chain``, or None."""
        c = audit_records.c
        top = select(func.max(c.seq)).where(c.chain == chain).scalar_subquery()
        row = conn.execute(select(c.chain, c.seq, c.time, c.record)
                           .where(and_(c.chain == chain, c.seq == top))).first()
        if row is None:
            return None
        return AuditRow(row.chain, row.seq, utc(row.time) or row.time, row.record)

    def get(self, conn: Connection, chain: str, seq: int) -> AuditRow | None:
        c = audit_records.c
        row = conn.execute(select(c.chain, c.seq, c.time, c.record)
                           .where(and_(c.chain == chain, c.seq == seq))).first()
        if row is None:
            return None
        return AuditRow(row.chain, row.seq, utc(row.time) or row.time, row.record)

    def chains(self, conn: Connection) -> list[str]:
        return [r[0] for r in conn.execute(select(audit_records.c.chain).distinct()
                                           .order_by(audit_records.c.chain))]
