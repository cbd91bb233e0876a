"""Domain objects to response structs."""

from __future__ import annotations

from datetime import datetime

from keykeeper.domain.keys import Key, KeyVersion
from keykeeper.domain.lifecycle import (
    DEFAULT_ROTATE_FRACTION,
    Periods,
    originator_end,
    periods_for,
    recipient_end,
    rotation_threshold,
    usage_limit,
)
from keykeeper.rest import schemas as s
from keykeeper.service.identity_views import rfc3339


def _ts(value: datetime) -> str:
    out = rfc3339(value)
    assert out is not None
    return out


def key_out(key: Key, periods: Periods | None = None) -> s.KeyOut:
    """``periods``: the key's effective crypto-period (service KeyAdmin.periods_of, which
    knows the namespace's defaults); None: the key's own overrides, else SP 800-57's."""
    p = periods or periods_for(key)
    return s.KeyOut(
        id=key.id, name=key.name, namespace=key.namespace, purpose=str(key.purpose),
        algorithm=key.algorithm, state=str(key.state), primary_version=key.primary_version,
        description=key.description, labels=dict(key.labels), exportable=key.exportable,
        protection=key.protection, rotation_period=key.rotation_period,
        next_rotation_time=rfc3339(key.next_rotation_time), created_at=_ts(key.created_at),
        updated_at=_ts(key.updated_at), destruction_time=rfc3339(key.destruction_time),
        compromised_at=rfc3339(key.compromised_at), compromise_reason=key.compromise_reason,
        activation_date=rfc3339(key.activation_date),
        deactivation_date=rfc3339(key.deactivation_date),
        min_encryption_version=key.min_encryption_version,
        min_decryption_version=key.min_decryption_version,
        usage_limit=usage_limit(key),
        usage_rotate_fraction=(key.usage_rotate_fraction
                               if key.usage_rotate_fraction is not None
                               else DEFAULT_ROTATE_FRACTION),
        rotation_threshold=rotation_threshold(key),
        originator_usage_period=p.originator, recipient_usage_period=p.recipient,
        rotation_reason=key.rotation_reason, origin=key.origin,
    )


def version_out(v: KeyVersion, key: Key | None = None,
                periods: Periods | None = None) -> s.VersionOut:
    """With ``key`` (and its ``periods``), the ends of the version's usage periods too."""
    ends: tuple[str | None, str | None] = (None, None)
    if key is not None:
        p = periods or periods_for(key)
        ends = (rfc3339(originator_end(key, v, p)), rfc3339(recipient_end(key, v, p)))
    return s.VersionOut(version=v.version, state=str(v.state), created_at=_ts(v.created_at),
                        destroyed_at=rfc3339(v.destroyed_at), protect_count=v.protect_count,
                        originator_usage_end=ends[0], recipient_usage_end=ends[1],
                        deactivated_at=rfc3339(v.deactivated_at),
                        compromised_at=rfc3339(v.compromised_at),
                        compromise_reason=v.compromise_reason, in_hsm=v.in_hsm,
                        public_only=v.public_only)
