"""Repository of destruction receipts, and the lifecycle queries of compromise response:
how much wrapped material a key still holds, and which keys a bulk revocation matches.

Every function takes an open ``Connection`` inside a transaction that the service layer
owns (one transaction per mutating operation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, or_, select

from keykeeper.store.schema import destruction_receipts, key_versions, keys

__all__ = ["KeyQuery", "ReceiptRepository"]


@dataclass(frozen=True, slots=True)
class KeyQuery:
    """The filters of a bulk revocation; None matches any value."""

    namespace: str | None = None
    created_by: str | None = None
    algorithm: str | None = None
    created_before: datetime | None = None   # exclusive
    states: tuple[str, ...] = ()              # empty: any state


class ReceiptRepository:
    def insert(self, conn: Connection, *, receipt_id: str, key_id: str, receipt: str,
               created_at: datetime) -> None:
        conn.execute(insert(destruction_receipts).values(
            id=receipt_id, key_id=key_id, receipt=receipt, created_at=created_at))

    def for_key(self, conn: Connection, key_id: str) -> list[str]:
        """The key's receipts (signed JSON text), oldest first."""
        q = (select(destruction_receipts.c.receipt)
             .where(destruction_receipts.c.key_id == key_id)
             .order_by(destruction_receipts.c.created_at, destruction_receipts.c.id))
        return [str(r.receipt) for r in conn.execute(q)]

    def versions_with_material(self, conn: Connection, key_id: str,
                               versions: tuple[int, ...] | None = None) -> int:
        """How many ``key_versions`` rows of the key (or of ``versions`` of it) still hold
        wrapped material or name an HSM key (``hsm_key_id``)."""
        q = select(func.count()).select_from(key_versions).where(
            key_versions.c.key_id == key_id,
            or_(key_versions.c.wrapped_material.is_not(None),
                key_versions.c.hsm_key_id.is_not(None)))
        if versions is not None:
            q = q.where(key_versions.c.version.in_(versions))
        return int(conn.execute(q).scalar_one())

    def matching_keys(self, conn: Connection, query: KeyQuery, *, after: str | None,
                      limit: int) -> list[str]:
        """Ids of the keys matching ``query``, in id order after ``after``, at most
        ``limit``."""
        c = keys.c
        q = select(c.id).order_by(c.id).limit(limit)
        if query.namespace is not None:
            q = q.where(c.namespace == query.namespace)
        if query.created_by is not None:
            q = q.where(c.created_by == query.created_by)
        if query.algorithm is not None:
            q = q.where(c.algorithm == query.algorithm)
        if query.created_before is not None:
            q = q.where(c.created_at < query.created_before)
        if query.states:
            q = q.where(c.state.in_(query.states))
        if after is not None:
            q = q.where(c.id > after)
        return [str(r.id) for r in conn.execute(q)]
