"""Domain objects to response structs."""

from __future__ import annotations

from datetime import datetime

from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.rest import schemas as s
from keykeeper.service.identity_views import rfc3339


def _ts(value: datetime) -> str:
    out = rfc3339(value)
    assert out is not None
    return out


def key_out(key: Key) -> s.KeyOut:
    return s.KeyOut(
        id=key.id, name=key.name, namespace=key.namespace, purpose=str(key.purpose),
        algorithm=key.algorithm, state=str(key.state), primary_version=key.primary_version,
        description=key.description, labels=dict(key.labels), exportable=key.exportable,
        protection=key.protection, rotation_period=key.rotation_period,
        next_rotation_time=rfc3339(key.next_rotation_time), created_at=_ts(key.created_at),
        updated_at=_ts(key.updated_at), destruction_time=rfc3339(key.destruction_time),
        compromised_at=rfc3339(key.compromised_at), compromise_reason=key.compromise_reason,
    )


def version_out(v: KeyVersion) -> s.VersionOut:
    return s.VersionOut(version=v.version, state=str(v.state), created_at=_ts(v.created_at),
                        destroyed_at=rfc3339(v.destroyed_at))
