"""Row <-> domain conversions. Rows never leave store/; domain objects are frozen."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from keykeeper.crypto.registry import Purpose
from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.domain.states import KeyState, VersionState


def utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: every stored time is UTC, so attach it."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    result = utc(value)
    assert result is not None
    return result


def version_from_row(row: Any) -> KeyVersion:
    return KeyVersion(
        key_id=row.key_id, version=row.version, state=VersionState(row.state),
        created_at=_utc(row.created_at), destroyed_at=utc(row.destroyed_at),
        public_key_pem=row.public_key,
    )


def key_from_row(row: Any, labels: dict[str, str], versions: tuple[KeyVersion, ...]) -> Key:
    return Key(
        id=row.id, namespace=row.namespace, name=row.name, purpose=Purpose(row.purpose),
        algorithm=row.algorithm, state=KeyState(row.state), primary_version=row.primary_version,
        created_at=_utc(row.created_at), updated_at=_utc(row.updated_at),
        description=row.description, labels=MappingProxyType(dict(labels)),
        exportable=bool(row.exportable), protection=row.protection,
        rotation_period=row.rotation_period, next_rotation_time=utc(row.next_rotation_time),
        destruction_time=utc(row.destruction_time), compromised_at=utc(row.compromised_at),
        compromise_reason=row.compromise_reason, created_by=row.created_by, versions=versions,
    )
