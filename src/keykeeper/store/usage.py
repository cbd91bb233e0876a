"""Repository of the ``key_usage`` table (per-key usage statistics) and the key census
behind the ``keykeeper_keys`` gauge.

One row per ``(key_id, version, operation, principal)``: a count and the first and last
time of use. :meth:`UsageRepository.add` merges counts with one upsert statement
(``INSERT ... ON CONFLICT DO UPDATE``, which SQLite and PostgreSQL both speak), so
concurrent flushes from several nodes add up instead of overwriting each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, func, select
from sqlalchemy.dialects import postgresql, sqlite

from keykeeper.store.convert import utc
from keykeeper.store.schema import key_usage, keys, namespaces

__all__ = ["UsageRepository", "UsageRow"]

_CHUNK = 500


@dataclass(frozen=True, slots=True)
class UsageRow:
    key_id: str
    version: int
    operation: str
    principal: str
    count: int
    first_used: datetime
    last_used: datetime


class UsageRepository:
    def add(self, conn: Connection, rows: Iterable[UsageRow]) -> None:
        """Add ``rows`` to the stored counts (a new row, or count + n, the earlier first
        use and the later last use)."""
        items = [{"key_id": r.key_id, "version": r.version, "operation": r.operation,
                  "principal": r.principal, "count": r.count, "first_used": r.first_used,
                  "last_used": r.last_used} for r in rows]
        if not items:
            return
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        c = key_usage.c
        for start in range(0, len(items), _CHUNK):
            stmt: Any = dialect.insert(key_usage)
            ex = stmt.excluded
            stmt = stmt.on_conflict_do_update(
                index_elements=[c.key_id, c.version, c.operation, c.principal],
                set_={"count": c.count + ex.count,
                      "first_used": case((ex.first_used < c.first_used, ex.first_used),
                                         else_=c.first_used),
                      "last_used": case((ex.last_used > c.last_used, ex.last_used),
                                        else_=c.last_used)})
            conn.execute(stmt, items[start:start + _CHUNK])

    def for_key(self, conn: Connection, key_id: str) -> list[UsageRow]:
        """Every row of one key."""
        q = select(key_usage).where(key_usage.c.key_id == key_id)
        return [UsageRow(r.key_id, r.version, r.operation, r.principal, int(r._mapping["count"]),
                         utc(r.first_used) or r.first_used, utc(r.last_used) or r.last_used)
                for r in conn.execute(q)]

    def key_counts(self, conn: Connection) -> dict[tuple[str, str, str], int]:
        """Keys by (state, algorithm, namespace), outside deleted namespaces: one query."""
        deleted = select(namespaces.c.name).where(namespaces.c.deleted_at.is_not(None))
        q = (select(keys.c.state, keys.c.algorithm, keys.c.namespace, func.count())
             .where(keys.c.namespace.not_in(deleted))
             .group_by(keys.c.state, keys.c.algorithm, keys.c.namespace))
        return {(s, a, n): int(count) for s, a, n, count in conn.execute(q)}
