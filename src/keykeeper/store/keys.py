"""Repository of keys, key versions, labels and lifecycle events.

Every function takes an open ``Connection`` inside a transaction that the
service layer owns (one transaction per mutating operation).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.errors import AlreadyExists, InvalidArgument, NotFound
from keykeeper.store.convert import key_from_row, version_from_row
from keykeeper.store.schema import key_events, key_labels, key_versions, keys, namespaces

__all__ = ["KeyFilter", "KeyRepository", "NewVersion"]


@dataclass(frozen=True, slots=True)
class NewVersion:
    version: int
    state: str
    wrapped_material: bytes | None   # None: a public key imported alone (issue 6 §3)
    public_key_pem: str | None
    created_at: datetime
    hsm_key_id: str | None = None    # an HSM-protected version: its CKA_ID (hex), no material


@dataclass(frozen=True, slots=True)
class KeyFilter:
    namespace: str | None = None
    state: str | None = None
    purpose: str | None = None
    labels: Mapping[str, str] | None = None
    namespaces: frozenset[str] | None = None   # restrict to these (the caller's scope)


def _live() -> ColumnElement[bool]:
    """Keys of a deleted (crypto-erased) namespace are gone for every read: not found."""
    return keys.c.namespace.not_in(select(namespaces.c.name)
                                   .where(namespaces.c.deleted_at.is_not(None)))


def _encode_token(namespace: str, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([namespace, name]).encode()).decode()


def _decode_token(token: str) -> tuple[str, str]:
    try:
        if len(token) > 1024:
            raise ValueError
        value = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, str) for v in value)):
            raise ValueError
        return value[0], value[1]
    except (ValueError, TypeError, RecursionError, UnicodeError):
        raise InvalidArgument("page_token is not valid") from None


# The hot statements, built once (building a statement costs more CPU than running it
# on SQLite); the values are bound per call.
_IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
_LABELS_OF = select(key_labels).where(key_labels.c.key_id.in_(_IDS))
_VERSIONS_OF = (
    select(key_versions.c.key_id, key_versions.c.version, key_versions.c.state,
           key_versions.c.public_key, key_versions.c.created_at,
           key_versions.c.destroyed_at, key_versions.c.protect_count,
           key_versions.c.deactivated_at, key_versions.c.compromised_at,
           key_versions.c.compromise_reason,
           # no wrapped material, no HSM key, not erased: a public key alone
           and_(key_versions.c.wrapped_material.is_(None),
                key_versions.c.hsm_key_id.is_(None),
                key_versions.c.destroyed_at.is_(None)).label("public_only"),
           key_versions.c.hsm_key_id.is_not(None).label("in_hsm"))
    .where(key_versions.c.key_id.in_(_IDS)).order_by(key_versions.c.version))
_BY_ID = select(keys).where(keys.c.id == bindparam("key_id"), _live())
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
_INSERT_KEY = insert(keys)
_INSERT_VERSION = insert(key_versions)
_INSERT_EVENT = insert(key_events)
_INSERT_LABELS = insert(key_labels)
_DELETE_LABELS = delete(key_labels).where(key_labels.c.key_id == bindparam("key_id"))
_DELETE_SOME_LABELS = delete(key_labels).where(
    key_labels.c.key_id == bindparam("key_id"),
    key_labels.c.label.in_(bindparam("labels", expanding=True)))
_LIVE_NAMESPACE = (select(namespaces.c.name)
                   .where(namespaces.c.name == bindparam("namespace"),
                          namespaces.c.deleted_at.is_(None))
                   .with_for_update(read=True))


def _key_values(key: Key) -> dict[str, Any]:
    """The ``keys`` row values :meth:`KeyRepository.insert` writes for ``key``."""
    return dict(
        id=key.id, namespace=key.namespace, name=key.name, purpose=str(key.purpose),
        algorithm=key.algorithm, state=str(key.state),
        primary_version=key.primary_version, description=key.description,
        exportable=key.exportable, protection=key.protection,
        rotation_period=key.rotation_period, next_rotation_time=key.next_rotation_time,
        created_by=key.created_by, created_at=key.created_at,
        updated_at=key.updated_at, activation_date=key.activation_date,
        deactivation_date=key.deactivation_date,
        min_encryption_version=key.min_encryption_version,
        min_decryption_version=key.min_decryption_version,
        usage_limit=key.usage_limit, usage_rotate_fraction=key.usage_rotate_fraction,
        originator_usage_period=key.originator_usage_period,
        recipient_usage_period=key.recipient_usage_period, origin=key.origin)


def _insert_labels(conn: Connection, key_id: str, labels: Mapping[str, str]) -> None:
    if labels:
        conn.execute(_INSERT_LABELS, [
            {"key_id": key_id, "label": k, "value": v} for k, v in labels.items()])


class KeyRepository:
    # -- reads -----------------------------------------------------------------------------
    def _load(self, conn: Connection, rows: list[Any]) -> list[Key]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        labels: dict[str, dict[str, str]] = {i: {} for i in ids}
        for lr in conn.execute(_LABELS_OF, {"ids": ids}):
            labels[lr.key_id][lr.label] = lr.value
        versions: dict[str, list[KeyVersion]] = {i: [] for i in ids}
        for vr in conn.execute(_VERSIONS_OF, {"ids": ids}):
            versions[vr.key_id].append(version_from_row(vr))
        return [key_from_row(r, labels[r.id], tuple(versions[r.id])) for r in rows]

    def get_by_id(self, conn: Connection, key_id: str, *, for_update: bool = False) -> Key | None:
        q = _BY_ID_FOR_UPDATE if for_update else _BY_ID
        found = self._load(conn, list(conn.execute(q, {"key_id": key_id})))
        return found[0] if found else None

    def get_by_name(self, conn: Connection, namespace: str, name: str,
                    *, for_update: bool = False) -> Key | None:
        q = select(keys).where(keys.c.namespace == namespace, keys.c.name == name,
                               _live())
        if for_update:
            q = q.with_for_update()
        found = self._load(conn, list(conn.execute(q)))
        return found[0] if found else None

    def list_keys(self, conn: Connection, flt: KeyFilter, page_size: int,
             page_token: str | None) -> tuple[list[Key], str | None]:
        """Keys ordered by (namespace, name); keyset pagination with an opaque token."""
        q = select(keys).where(_live())
        if flt.namespace is not None:
            q = q.where(keys.c.namespace == flt.namespace)
        if flt.namespaces is not None:
            q = q.where(keys.c.namespace.in_(sorted(flt.namespaces)))
        if flt.state is not None:
            q = q.where(keys.c.state == flt.state)
        if flt.purpose is not None:
            q = q.where(keys.c.purpose == flt.purpose)
        for label, value in (flt.labels or {}).items():
            q = q.where(exists().where(and_(key_labels.c.key_id == keys.c.id,
                                            key_labels.c.label == label,
                                            key_labels.c.value == value)))
        if page_token:
            ns, name = _decode_token(page_token)
            q = q.where(or_(keys.c.namespace > ns,
                            and_(keys.c.namespace == ns, keys.c.name > name)))
        q = q.order_by(keys.c.namespace, keys.c.name).limit(page_size + 1)
        rows = list(conn.execute(q))
        more = len(rows) > page_size
        rows = rows[:page_size]
        token = _encode_token(rows[-1].namespace, rows[-1].name) if more and rows else None
        return self._load(conn, rows), token

    def wrapped_material(self, conn: Connection, key_id: str, version: int) -> bytes | None:
        q = select(key_versions.c.wrapped_material).where(
            key_versions.c.key_id == key_id, key_versions.c.version == version)
        value = conn.execute(q).scalar_one_or_none()
        return bytes(value) if value is not None else None

    def hsm_key_id(self, conn: Connection, key_id: str, version: int) -> str | None:
        """The ``CKA_ID`` (hex) of an HSM-protected version's token object; None for a
        software version, or once erased (issue 6 §2)."""
        q = select(key_versions.c.hsm_key_id).where(
            key_versions.c.key_id == key_id, key_versions.c.version == version)
        value = conn.execute(q).scalar_one_or_none()
        return str(value) if value is not None else None

    def count_by_state(self, conn: Connection) -> dict[str, int]:
        q = select(keys.c.state, func.count()).group_by(keys.c.state)
        return {state: int(n) for state, n in conn.execute(q)}

    def due_for_destruction(self, conn: Connection, now: datetime) -> list[str]:
        q = select(keys.c.id).where(keys.c.state == "pending-destruction",
                                    keys.c.destruction_time <= now)
        return [r.id for r in conn.execute(q)]

    # -- writes ----------------------------------------------------------------------------
    def insert(self, conn: Connection, key: Key, version: NewVersion | None) -> None:
        """Insert ``key`` with its first version (None: an external key awaiting import)."""
        # The namespace must still be live when the key lands: its row is share-locked, so
        # a concurrent deletion (which locks it for update) either comes first and the key
        # is refused, or waits and then erases the new key with the rest.
        live = conn.execute(_LIVE_NAMESPACE, {"namespace": key.namespace}).first()
        if live is None:
            raise NotFound(f"namespace '{key.namespace}' not found")
        try:
            conn.execute(_INSERT_KEY, _key_values(key))
        except IntegrityError:
            raise AlreadyExists(f"key '{key.ref}' already exists") from None
        _insert_labels(conn, key.id, key.labels)  # a new key: no labels to replace
        if version is not None:
            self.insert_version(conn, key.id, version)

    @staticmethod
    def as_inserted(key: Key, version: NewVersion | None) -> Key:
        """``key`` as :meth:`get_by_id` reads it back right after :meth:`insert` stored
        it with ``version``, without the three SELECTs: the same row conversions
        (store/convert.py) over the values insert wrote and the columns' defaults
        (labels in the order SQLite returns them, by label)."""
        row = SimpleNamespace(**_key_values(key), destruction_time=None,
                              compromised_at=None, compromise_reason=None,
                              rotation_reason=None)
        versions: tuple[KeyVersion, ...] = ()
        if version is not None:
            versions = (version_from_row(SimpleNamespace(
                key_id=key.id, version=version.version, state=version.state,
                public_key=version.public_key_pem, created_at=version.created_at,
                destroyed_at=None, protect_count=0, deactivated_at=None, compromised_at=None,
                compromise_reason=None, in_hsm=version.hsm_key_id is not None,
                public_only=(version.wrapped_material is None
                             and version.hsm_key_id is None))),)
        return key_from_row(row, dict(sorted(key.labels.items())), versions)

    def insert_version(self, conn: Connection, key_id: str, v: NewVersion) -> None:
        conn.execute(_INSERT_VERSION, dict(
            key_id=key_id, version=v.version, state=v.state, wrapped_material=v.wrapped_material,
            public_key=v.public_key_pem, created_at=v.created_at, hsm_key_id=v.hsm_key_id))

    def set_labels(self, conn: Connection, key_id: str, labels: Mapping[str, str]) -> None:
        conn.execute(_DELETE_LABELS, {"key_id": key_id})
        _insert_labels(conn, key_id, labels)

    def change_labels(self, conn: Connection, key_id: str, old: Mapping[str, str],
                      new: Mapping[str, str]) -> None:
        """Labels ``old`` -> ``new``, where ``old`` is exactly what is stored (the key
        was inserted by this same transaction): deletes only the labels that go or
        change, inserts only those that come or change (:meth:`set_labels` rewrites all)."""
        gone = [k for k, v in old.items() if new.get(k) != v]
        if gone:
            conn.execute(_DELETE_SOME_LABELS, {"key_id": key_id, "labels": gone})
        _insert_labels(conn, key_id, {k: v for k, v in new.items() if old.get(k) != v})

    def update(self, conn: Connection, key_id: str, **values: Any) -> None:
        conn.execute(update(keys).where(keys.c.id == key_id).values(**values))

    def update_version(self, conn: Connection, key_id: str, version: int, **values: Any) -> None:
        conn.execute(update(key_versions).where(
            key_versions.c.key_id == key_id, key_versions.c.version == version).values(**values))

    def record_event(self, conn: Connection, *, key_id: str, action: str, from_state: str | None,
                     to_state: str, principal: str, at: datetime, version: int | None = None,
                     reason: str | None = None) -> None:
        conn.execute(_INSERT_EVENT, dict(
            key_id=key_id, version=version, action=action, from_state=from_state,
            to_state=to_state, principal=principal, reason=reason, at=at))

    def created_states(self, conn: Connection, key_ids: Sequence[str]) -> dict[str, str]:
        """The state each key was created in (the ``to_state`` of its creation event, the
        one event without a ``from_state``), in one query: key id -> state (a key without
        a creation event is left out). ``key_ids``: at most a few thousand."""
        if not key_ids:
            return {}
        q = (select(key_events.c.key_id, key_events.c.to_state)
             .where(key_events.c.key_id.in_(list(key_ids)),
                    key_events.c.from_state.is_(None))
             .order_by(key_events.c.id))
        out: dict[str, str] = {}
        for key_id, state in conn.execute(q):
            out.setdefault(key_id, state)
        return out

    def events(self, conn: Connection, key_id: str) -> list[dict[str, Any]]:
        q = select(key_events).where(key_events.c.key_id == key_id).order_by(key_events.c.id)
        return [dict(r._mapping) for r in conn.execute(q)]
