"""The store side of usage counting (service/usage.py): the conditional reservation of a
block of a version's ``protect_count``, and the soft threshold's rotation mark."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, case, func, or_, select, update

from keykeeper.domain.keys import Key
from keykeeper.errors import Unavailable
from keykeeper.service.deps import Deps
from keykeeper.store.schema import key_events, key_versions, keys

__all__ = ["USAGE_EVENT", "reserve_cas", "reserve_pg", "threshold_reached"]

USAGE_EVENT = "usage-threshold"
_CAS_TRIES = 16


def reserve_pg(conn: Connection, key_id: str, version: int, want: int, cap: int,
                stop_at: int) -> tuple[int, int]:
    """PostgreSQL: one statement, the row locked by its CTE (old and new count)."""
    kv = key_versions
    old = (select(kv.c.key_id, kv.c.version, kv.c.protect_count.label("c"))
           .where(kv.c.key_id == key_id, kv.c.version == version)
           .with_for_update().cte("old"))
    count = old.c.c
    grant = func.least(want, case((count < stop_at, stop_at - count), else_=cap - count))
    row = conn.execute(
        update(kv).where(kv.c.key_id == old.c.key_id, kv.c.version == old.c.version,
                         count < cap)
        .values(protect_count=count + grant)
        .returning(count, kv.c.protect_count)).first()
    if row is None:
        return 0, 0
    return int(row[0]), int(row[1])

def reserve_cas(conn: Connection, key_id: str, version: int, want: int, cap: int,
                 stop_at: int) -> tuple[int, int]:
    """SQLite: take the write lock first (a no-op UPDATE: other processes -- uvicorn
    workers -- wait on busy_timeout, and the read below is the latest), read, then a
    conditional UPDATE on the value read."""
    kv = key_versions
    where = (kv.c.key_id == key_id, kv.c.version == version)
    conn.execute(update(kv).where(*where).values(protect_count=kv.c.protect_count))
    for _ in range(_CAS_TRIES):
        old = conn.execute(select(kv.c.protect_count).where(*where)).scalar_one_or_none()
        if old is None or old >= cap:
            return 0, 0
        grant = min(want, stop_at - old if old < stop_at else cap - old)
        done = conn.execute(update(kv).where(*where, kv.c.protect_count == old)
                            .values(protect_count=old + grant))
        if done.rowcount == 1:
            return int(old), int(old + grant)
    raise Unavailable("the usage count is contended; retry")  # pragma: no cover


def threshold_reached(deps: Deps, conn: Connection, key: Key, version: int, threshold: int,
                      limit: int, now: datetime) -> None:
    """In the reserving transaction: rotate now (by usage), and say so once."""
    due = keys.c.next_rotation_time
    conn.execute(update(keys).where(keys.c.id == key.id).values(
        rotation_reason="usage",
        next_rotation_time=case((or_(due.is_(None), due > now), now), else_=due)))
    seen = conn.execute(select(key_events.c.id).where(
        key_events.c.key_id == key.id, key_events.c.version == version,
        key_events.c.action == USAGE_EVENT).limit(1)).first()
    if seen is None:
        deps.keys.record_event(
            conn, key_id=key.id, action=USAGE_EVENT, from_state=str(key.state),
            to_state=str(key.state), principal="system", at=now, version=version,
            reason=f"{threshold} of {limit} protect operations reached (the rotation "
                   "threshold); rotation due")
