"""Making key versions: fresh material generated outside any transaction (RSA-4096 takes
seconds and must hold no row lock nor SQLite's writer lock), wrapped under the namespace
KEK with its place bound as associated data, and stored as the new primary version. One
path for key creation, manual rotation and the scheduler's rotation."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection

from keykeeper.crypto import generate_material, load_private
from keykeeper.crypto.registry import AlgorithmSpec, get_spec
from keykeeper.domain.keys import Key
from keykeeper.domain.states import VersionState
from keykeeper.service.deps import Deps
from keykeeper.service.lookup import KeyLookup
from keykeeper.store.keys import NewVersion

__all__ = ["PreparedVersion", "add_primary_version", "generate", "new_version",
           "prepare_version"]


class PreparedVersion(NamedTuple):
    """What a new key version needs before its transaction: the algorithm, the fresh
    material with its public key (PEM, asymmetric keys only), and the namespace's wrapped
    KEK."""

    spec: AlgorithmSpec
    material: tuple[bytes, str | None]
    wrapped_kek: bytes


def generate(spec: AlgorithmSpec) -> tuple[bytes, str | None]:
    """Fresh material from the OS CSPRNG (crypto/) and its public key."""
    material = generate_material(spec)
    public = load_private(spec, material).public_key_pem() if spec.asymmetric else None
    return material, public


def prepare_version(lookup: KeyLookup, key: Key) -> PreparedVersion:
    """Fresh material for a new version of ``key`` and its namespace's wrapped KEK."""
    spec = get_spec(key.algorithm)
    return PreparedVersion(spec, generate(spec), lookup.wrapped_kek(key.namespace))


def new_version(deps: Deps, prepared: PreparedVersion, key_id: str, namespace: str,
                number: int) -> NewVersion:
    """The row of version ``number``: material wrapped with its namespace, key id, version
    and algorithm bound as associated data (custody/)."""
    material, public = prepared.material
    wrapped = deps.custody.wrap_material(namespace, prepared.wrapped_kek, key_id, number,
                                         prepared.spec.name, material)
    return NewVersion(version=number, state=str(VersionState.ACTIVE), wrapped_material=wrapped,
                      public_key_pem=public, created_at=deps.clock())


def add_primary_version(deps: Deps, conn: Connection, key: Key, prepared: PreparedVersion, *,
                        principal: str, now: datetime, reason: str | None = None) -> int:
    """On the locked row of ``key``: store ``prepared`` as the next version, make it
    primary, move ``next_rotation_time`` one ``rotation_period`` on (NULL without one),
    clear ``rotation_reason``, record a ``rotate`` event. Returns the new number."""
    number = max(v.version for v in key.versions) + 1
    deps.keys.insert_version(conn, key.id, new_version(deps, prepared, key.id, key.namespace,
                                                       number))
    deps.keys.update(conn, key.id, primary_version=number, updated_at=now,
                     next_rotation_time=(now + timedelta(seconds=key.rotation_period)
                                         if key.rotation_period else None),
                     rotation_reason=None)
    deps.keys.record_event(conn, key_id=key.id, action="rotate", from_state=str(key.state),
                           to_state=str(key.state), principal=principal, at=now,
                           version=number, reason=reason)
    return number
