"""Namespaces as rows: list, update, and crypto-erasure (deletion).

Inserting and reading one namespace stays in store/system.py (init and key creation use
it). Erasure is one statement set inside the caller's transaction: every key version of
the namespace loses its wrapped material, every key becomes destroyed (with a lifecycle
event), and the namespace's wrapped KEK is replaced by empty bytes with ``deleted_at``
set. The row stays, so the name is never reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from keykeeper.store.schema import key_events, key_versions, keys, namespaces
from keykeeper.store.system import NamespaceRow, namespace_row

__all__ = ["Erased", "NamespaceRepository"]

_COMPROMISED = ("compromised", "destroyed-compromised")
_DESTROYED = ("destroyed", "destroyed-compromised")


@dataclass(frozen=True, slots=True)
class Erased:
    """What one erasure destroyed."""

    key_ids: tuple[str, ...]       # every key of the namespace
    hsm_key_ids: tuple[str, ...]   # CKA_IDs (hex) of its HSM-protected versions to destroy
    keys_destroyed: int            # keys that were not destroyed before
    versions_destroyed: int        # versions that still had material


class NamespaceRepository:
    def list_namespaces(self, conn: Connection, *,
                        include_deleted: bool = False) -> list[NamespaceRow]:
        q = select(namespaces).order_by(namespaces.c.name)
        if not include_deleted:
            q = q.where(namespaces.c.deleted_at.is_(None))
        return [namespace_row(r) for r in conn.execute(q)]

    def get_for_update(self, conn: Connection, name: str) -> NamespaceRow | None:
        """The live namespace, row-locked until the transaction ends."""
        r = conn.execute(select(namespaces).where(namespaces.c.name == name,
                                                  namespaces.c.deleted_at.is_(None))
                         .with_for_update()).first()
        return None if r is None else namespace_row(r)

    def update(self, conn: Connection, name: str, **values: Any) -> None:
        conn.execute(update(namespaces).where(namespaces.c.name == name,
                                              namespaces.c.deleted_at.is_(None))
                     .values(**values))

    def count_keys(self, conn: Connection, name: str) -> int:
        return int(conn.execute(select(func.count()).select_from(keys)
                                .where(keys.c.namespace == name)).scalar_one())

    def key_ids(self, conn: Connection, name: str) -> list[str]:
        return [r.id for r in conn.execute(select(keys.c.id).where(keys.c.namespace == name))]

    def deleted_names(self, conn: Connection) -> list[str]:
        return [r.name for r in conn.execute(select(namespaces.c.name)
                                             .where(namespaces.c.deleted_at.is_not(None)))]

    def erase(self, conn: Connection, name: str, *, principal: str, at: datetime) -> Erased:
        """Crypto-erase namespace ``name`` (the caller holds its row lock and checked that
        it is live)."""
        rows = list(conn.execute(select(keys.c.id, keys.c.state, keys.c.compromised_at)
                                 .where(keys.c.namespace == name).with_for_update()))
        in_namespace = key_versions.c.key_id.in_(select(keys.c.id)
                                                 .where(keys.c.namespace == name))
        with_material = int(conn.execute(
            select(func.count()).select_from(key_versions)
            .where(in_namespace, key_versions.c.wrapped_material.is_not(None)
                   | key_versions.c.hsm_key_id.is_not(None))).scalar_one())
        hsm_ids = tuple(r.hsm_key_id for r in conn.execute(
            select(key_versions.c.hsm_key_id)
            .where(in_namespace, key_versions.c.hsm_key_id.is_not(None))))
        destroyed_at = func.coalesce(key_versions.c.destroyed_at, at)
        conn.execute(update(key_versions)
                     .where(in_namespace, key_versions.c.state.in_(_COMPROMISED))
                     .values(state="destroyed-compromised", wrapped_material=None,
                             hsm_key_id=None, destroyed_at=destroyed_at))
        conn.execute(update(key_versions)
                     .where(in_namespace, key_versions.c.state.not_in(_COMPROMISED))
                     .values(state="destroyed", wrapped_material=None,
                             hsm_key_id=None, destroyed_at=destroyed_at))
        events = []
        for r in rows:
            if r.state in _DESTROYED:
                continue
            to = "destroyed-compromised" if r.compromised_at is not None else "destroyed"
            conn.execute(update(keys).where(keys.c.id == r.id)
                         .values(state=to, updated_at=at, destruction_time=None))
            events.append({"key_id": r.id, "version": None, "action": "destroy",
                           "from_state": r.state, "to_state": to, "principal": principal,
                           "reason": f"namespace '{name}' deleted (crypto-erasure)", "at": at})
        if events:
            conn.execute(insert(key_events), events)
        conn.execute(update(namespaces).where(namespaces.c.name == name)
                     .values(wrapped_kek=b"", deleted_at=at))
        return Erased(key_ids=tuple(r.id for r in rows), hsm_key_ids=hsm_ids,
                      keys_destroyed=len(events),
                      versions_destroyed=with_material)

    def checkpoint(self, conn: Connection) -> bool:
        """SQLite: copy the write-ahead log into the database file and truncate it, so the
        pre-erasure page images it holds are gone too (secure_delete zeroes the freed
        space in the database file). False if a reader kept it from completing.
        PostgreSQL: nothing to do here (see docs/threat-model.md)."""
        if conn.dialect.name != "sqlite":
            return True
        row = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").first()
        return row is None or not row[0]
