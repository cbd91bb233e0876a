"""Repository of the ``alerts`` table.

``dedup_key`` holds the alert's subject: an alert is the same as an earlier one when its
rule and subject are, and the earlier one was last seen within the deduplication window.
:meth:`AlertRepository.raise_or_bump` decides that in one transaction that every node
serializes on (a PostgreSQL transaction-scoped advisory lock on the rule and subject;
SQLite's single writer), so two nodes raising the same alert at once make one row.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, text, update

from keykeeper.errors import InvalidArgument
from keykeeper.store.convert import utc
from keykeeper.store.schema import alerts

__all__ = ["AlertFilter", "AlertRepository", "AlertRow"]

SUBJECT_MAX = 256


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: str
    rule: str
    severity: str
    subject: str
    summary: str
    evidence: dict[str, Any]
    count: int
    node: str
    first_seen: datetime
    last_seen: datetime
    state: str                       # open | acknowledged
    acknowledged_by: str | None


@dataclass(frozen=True, slots=True)
class AlertFilter:
    state: str | None = None
    rule: str | None = None
    severity: str | None = None
    since: datetime | None = None    # last seen at or after


def _row(r: Any) -> AlertRow:
    return AlertRow(id=r.id, rule=r.rule, severity=r.severity, subject=r.dedup_key,
                    summary=r.summary, evidence=json.loads(r.evidence),
                    count=int(r._mapping["count"]),
                    node=r.node, first_seen=utc(r.first_seen) or r.first_seen,
                    last_seen=utc(r.last_seen) or r.last_seen, state=r.state,
                    acknowledged_by=r.acknowledged_by)


def _token(row: AlertRow) -> str:
    raw = f"{row.first_seen.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _open_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when, _, alert_id = raw.partition("|")
        at = datetime.fromisoformat(when)
        if not alert_id or at.tzinfo is None:
            raise ValueError
        return at.astimezone(UTC), alert_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("invalid page_token: pass the next_page_token of the previous "
                              "page unchanged") from None


class AlertRepository:
    def raise_or_bump(self, conn: Connection, *, new_id: str, rule: str, severity: str,
                      subject: str, summary: str, evidence: dict[str, Any], node: str,
                      now: datetime, dedup_since: datetime) -> tuple[AlertRow, bool]:
        """Within the caller's transaction: add one to the count of the alert with this
        rule and subject last seen at or after ``dedup_since`` (answers it, False), or
        insert a new one (answers it, True)."""
        subject = subject[:SUBJECT_MAX]
        if conn.dialect.name == "postgresql":
            digest = hashlib.sha256(f"{rule}\x00{subject}".encode()).digest()
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                         {"k": int.from_bytes(digest[:8], "big", signed=True)})
        c = alerts.c
        # An UPDATE first: on SQLite it takes the writer lock before anything is read.
        same = and_(c.rule == rule, c.dedup_key == subject, c.last_seen >= dedup_since)
        bumped = conn.execute(update(alerts).where(same)
                              .values(count=c.count + 1, last_seen=now))
        if bumped.rowcount:
            found = conn.execute(select(alerts).where(same)
                                 .order_by(c.last_seen.desc()).limit(1)).first()
            assert found is not None
            return _row(found), False
        conn.execute(insert(alerts).values(
            id=new_id, rule=rule, severity=severity, dedup_key=subject, summary=summary,
            evidence=json.dumps(evidence, sort_keys=True, default=str), count=1, node=node,
            first_seen=now, last_seen=now, state="open", acknowledged_by=None))
        created = conn.execute(select(alerts).where(c.id == new_id)).first()
        assert created is not None
        return _row(created), True

    def get(self, conn: Connection, alert_id: str) -> AlertRow | None:
        found = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
        return _row(found) if found is not None else None

    def acknowledge(self, conn: Connection, alert_id: str, principal: str) -> AlertRow | None:
        """Mark an open alert acknowledged by ``principal`` (an acknowledged one stays as it
        is); None if there is no such alert."""
        conn.execute(update(alerts).where(alerts.c.id == alert_id, alerts.c.state == "open")
                     .values(state="acknowledged", acknowledged_by=principal))
        return self.get(conn, alert_id)

    def list(self, conn: Connection, flt: AlertFilter, page_size: int,
             page_token: str | None) -> tuple[list[AlertRow], str | None]:
        """One page, newest first (by first seen, then id); a token when more follow."""
        c = alerts.c
        q = select(alerts)
        for column, value in ((c.state, flt.state), (c.rule, flt.rule),
                              (c.severity, flt.severity)):
            if value is not None:
                q = q.where(column == value)
        if flt.since is not None:
            q = q.where(c.last_seen >= flt.since)
        if page_token:
            at, alert_id = _open_token(page_token)
            q = q.where(or_(c.first_seen < at, and_(c.first_seen == at, c.id < alert_id)))
        q = q.order_by(c.first_seen.desc(), c.id.desc()).limit(page_size + 1)
        rows = [_row(r) for r in conn.execute(q)]
        more = len(rows) > page_size
        rows = rows[:page_size]
        return rows, (_token(rows[-1]) if more and rows else None)
