"""The queries that find the keys a scheduler job has to act on, by indexed columns where
there is one. Each answers key ids only; the job re-reads each key and decides with the
pure rules of keykeeper.domain.lifecycle (a scan may return more than is due, never less).

Keys of a deleted (crypto-erased) namespace are never returned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, and_, false, or_, select, true, tuple_

from keykeeper.crypto.registry import Purpose
from keykeeper.domain.lifecycle import default_periods
from keykeeper.domain.states import KeyState, VersionState
from keykeeper.store.schema import key_versions, keys, namespaces

__all__ = ["due_for_activation", "due_for_deactivation", "due_for_rotation",
           "versions_ending_by"]

_MAX_PERIOD_TERMS = 64  # distinct period overrides matched exactly; beyond, a coarser bound


def _live() -> ColumnElement[bool]:
    return keys.c.namespace.not_in(select(namespaces.c.name)
                                   .where(namespaces.c.deleted_at.is_not(None)))


def _custom_plans(conn: Connection) -> None:
    """On PostgreSQL, plan this transaction's scans for their actual values: after five
    runs of one prepared statement the server may switch to a generic plan, which cannot
    see that ``created_at <= :bound`` selects a few rows (measured: 100x slower)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


def due_for_rotation(conn: Connection, now: datetime, after: tuple[datetime, str] | None,
                     limit: int) -> list[tuple[datetime, str]]:
    """``(next_rotation_time, id)`` of keys whose next rotation time has come, in that
    order, after the keyset position ``after``; at most ``limit``. Uses
    ``ix_keys_next_rotation_time``. A pre-active key is included (its activation date may
    have passed: ``rotation_due`` decides)."""
    _custom_plans(conn)
    q = (select(keys.c.next_rotation_time, keys.c.id)
         .where(keys.c.next_rotation_time <= now,
                keys.c.state.in_([str(KeyState.ACTIVE), str(KeyState.PRE_ACTIVE)]), _live()))
    if after is not None:
        q = q.where(tuple_(keys.c.next_rotation_time, keys.c.id) > tuple_(*after))
    q = q.order_by(keys.c.next_rotation_time, keys.c.id).limit(limit)
    return [(r.next_rotation_time, r.id) for r in conn.execute(q)]


def due_for_activation(conn: Connection, now: datetime) -> list[str]:
    """Pre-active keys whose activation date has come (KMIP 2.1 §3.22)."""
    q = select(keys.c.id).where(keys.c.state == str(KeyState.PRE_ACTIVE),
                                keys.c.activation_date <= now, _live())
    return [r.id for r in conn.execute(q)]


def due_for_deactivation(conn: Connection, now: datetime) -> list[str]:
    """Active or suspended keys whose deactivation date has come (KMIP 2.1 §3.22)."""
    q = select(keys.c.id).where(
        keys.c.state.in_([str(KeyState.ACTIVE), str(KeyState.SUSPENDED)]),
        keys.c.deactivation_date <= now, _live())
    return [r.id for r in conn.execute(q)]


def _default_originator(purpose: Purpose) -> int:
    return min(default_periods(purpose, False).originator,
               default_periods(purpose, True).originator)


_LIVE_VERSIONS = (VersionState.ACTIVE, VersionState.SUSPENDED, VersionState.DEACTIVATED)
# Purposes with a crypto-period: stored data (Secret Data, Opaque Objects, Certificates)
# is not a key, and SP 800-57 gives it none.
_PERIODIC = tuple(p for p in Purpose if p != Purpose.STORE)


def versions_ending_by(conn: Connection, horizon: datetime,
                       after: tuple[datetime, str, int] | None, limit: int, *,
                       states: tuple[VersionState, ...] = _LIVE_VERSIONS,
                       ) -> list[tuple[datetime, str, int]]:
    """``(created_at, key id, version)`` of versions in ``states`` (default: every live
    state) whose originator usage period may
    end by ``horizon``, in that order, after the keyset position ``after``, at most
    ``limit`` (a key with several such versions appears once per version; the order walks
    ``ix_key_versions_created_at``; stored data, which has no crypto-period, never): the
    candidates for deactivation
    (horizon = now) and for expiry notices (horizon = now + notice window; the recipient
    period never ends before the originator period, so this covers both). A version's
    period starts no earlier than its creation, so ``created_at <= horizon - period`` is
    a superset of the versions whose period ends by the horizon."""
    _custom_plans(conn)
    key_periods = [int(p) for (p,) in conn.execute(
        select(keys.c.originator_usage_period).where(
            keys.c.originator_usage_period.is_not(None)).distinct())]
    ns_periods = [(r.name, int(r.originator_usage_period)) for r in conn.execute(
        select(namespaces.c.name, namespaces.c.originator_usage_period).where(
            namespaces.c.originator_usage_period.is_not(None),
            namespaces.c.deleted_at.is_(None)))]
    created = key_versions.c.created_at

    def ends(period: int) -> ColumnElement[bool]:
        return created <= horizon - timedelta(seconds=period)

    terms: list[ColumnElement[bool]] = []
    if len(key_periods) <= _MAX_PERIOD_TERMS:
        terms += [and_(keys.c.originator_usage_period == p, ends(p)) for p in key_periods]
    elif key_periods:
        terms.append(and_(keys.c.originator_usage_period.is_not(None),
                          ends(min(key_periods))))
    inherits = keys.c.originator_usage_period.is_(None)
    if len(ns_periods) <= _MAX_PERIOD_TERMS:
        terms += [and_(inherits, keys.c.namespace == n, ends(p)) for n, p in ns_periods]
    else:
        terms.append(and_(inherits, ends(min(p for _, p in ns_periods))))
    defaults = and_(inherits, keys.c.namespace.not_in([n for n, _ in ns_periods])
                    if ns_periods else true(),
                    or_(*[and_(keys.c.purpose == str(p), ends(_default_originator(p)))
                          for p in _PERIODIC]))
    terms.append(defaults)
    # The shortest period in effect bounds every term: one range on ix_key_versions_created_at.
    shortest = min([*key_periods, *(p for _, p in ns_periods),
                    *(_default_originator(p) for p in _PERIODIC)])
    q = (select(created, key_versions.c.key_id, key_versions.c.version)
         .join(keys, key_versions.c.key_id == keys.c.id)
         .where(keys.c.state.in_([str(KeyState.ACTIVE), str(KeyState.SUSPENDED),
                                  str(KeyState.DEACTIVATED)]),
                key_versions.c.state.in_([str(v) for v in states]),
                keys.c.purpose != str(Purpose.STORE),
                ends(shortest), or_(false(), *terms), _live()))
    if after is not None:
        q = q.where(tuple_(created, key_versions.c.key_id, key_versions.c.version)
                    > tuple_(*after))
    q = q.order_by(created, key_versions.c.key_id, key_versions.c.version).limit(limit)
    return [(r.created_at, r.key_id, r.version) for r in conn.execute(q)]
