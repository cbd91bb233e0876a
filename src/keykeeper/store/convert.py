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
        public_key_pem=row.public_key, protect_count=int(row.protect_count or 0),
        deactivated_at=utc(row.deactivated_at), compromised_at=utc(row.compromised_at),
        compromise_reason=row.compromise_reason,
        public_only=bool(getattr(row, "public_only", False)),
        in_hsm=bool(getattr(row, "in_hsm", False)),
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
        activation_date=utc(row.activation_date), deactivation_date=utc(row.deactivation_date),
        min_encryption_version=int(row.min_encryption_version or 0),
        min_decryption_version=int(row.min_decryption_version or 0),
        usage_limit=None if row.usage_limit is None else int(row.usage_limit),
        usage_rotate_fraction=(None if row.usage_rotate_fraction is None
                               else float(row.usage_rotate_fraction)),
        originator_usage_period=row.originator_usage_period,
        recipient_usage_period=row.recipient_usage_period,
        rotation_reason=row.rotation_reason,
        origin=row.origin,
    )
