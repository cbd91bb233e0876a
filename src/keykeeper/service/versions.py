"""Making key versions: fresh material generated outside any transaction (RSA-4096 takes
seconds and must hold no row lock nor SQLite's writer lock), wrapped under the namespace
KEK with its place bound as associated data, and stored as the new primary version. One
path for key creation, manual rotation and the scheduler's rotation.

A key created with ``protection: "hsm"`` gets each version generated in the PKCS#11
token instead (custody/hsm/keys.py): the row then holds the token object's ``CKA_ID``
and no wrapped material, and a transaction that does not commit destroys the object
it would have referenced (:func:`discard_on_failure`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Connection

from keykeeper.crypto import generate_material, load_private
from keykeeper.crypto.registry import AlgorithmSpec, get_spec
from keykeeper.custody.hsm.keys import (
    HsmKey,
    check_hsm_algorithm,
    destroy_hsm_key,
    generate_hsm_key,
    object_label,
    relabel_hsm_key,
)
from keykeeper.custody.hsm.token import Token
from keykeeper.domain.keys import Key
from keykeeper.domain.states import VersionState
from keykeeper.errors import FailedPrecondition
from keykeeper.service.deps import Deps
from keykeeper.service.lookup import KeyLookup
from keykeeper.store.keys import NewVersion

__all__ = ["Outcome", "PreparedVersion", "add_primary_version", "discard_on_failure",
           "generate", "new_version", "prepare_first_version", "prepare_version"]

log = logging.getLogger("keykeeper.versions")


class PreparedVersion(NamedTuple):
    """What a new key version needs before its transaction: the algorithm, the fresh
    material with its public key (PEM, asymmetric keys only), and the namespace's wrapped
    KEK."""

    spec: AlgorithmSpec
    material: tuple[bytes, str | None]
    wrapped_kek: bytes
    hsm: HsmKey | None = None   # protection "hsm": the key made in the token (no material)


def generate(spec: AlgorithmSpec) -> tuple[bytes, str | None]:
    """Fresh material from the OS CSPRNG (crypto/) and its public key."""
    material = generate_material(spec)
    public = load_private(spec, material).public_key_pem() if spec.asymmetric else None
    return material, public


def prepare_version(lookup: KeyLookup, key: Key) -> PreparedVersion:
    """Fresh material for a new version of ``key`` and its namespace's wrapped KEK (for an
    HSM-protected key, a new key in the token, labelled for the next version number)."""
    spec = get_spec(key.algorithm)
    if key.protection == "hsm":
        number = max((v.version for v in key.versions), default=0) + 1
        return _in_hsm(lookup.hsm, spec, key.id, number, lookup.wrapped_kek(key.namespace))
    return PreparedVersion(spec, generate(spec), lookup.wrapped_kek(key.namespace))


def prepare_first_version(deps: Deps, key: Key, spec: AlgorithmSpec,
                          wrapped_kek: bytes) -> PreparedVersion:
    """Version 1 of a new ``key``: software material, or with ``key.protection == "hsm"``
    a key generated in the token. InvalidArgument for an algorithm the HSM may not hold
    (the message names those it may), FailedPrecondition when no HSM is configured or the
    token lacks the mechanism, Unavailable when the token cannot be used."""
    if key.protection == "hsm":
        return _in_hsm(deps.custody.hsm, spec, key.id, 1, wrapped_kek)
    return PreparedVersion(spec, generate(spec), wrapped_kek)


def _in_hsm(token: Token | None, spec: AlgorithmSpec, key_id: str, number: int,
            wrapped_kek: bytes) -> PreparedVersion:
    check_hsm_algorithm(spec)
    made = generate_hsm_key(_token(token), spec, key_id, number)
    return PreparedVersion(spec, (b"", made.public_key_pem), wrapped_kek, made)


def _token(token: Token | None) -> Token:
    if token is None:
        raise FailedPrecondition("protection 'hsm' needs a PKCS#11 token and none is "
                                 "configured on this server (KEYKEEPER_PKCS11_TOKEN_LABEL "
                                 "or KEYKEEPER_PKCS11_TOKEN_SERIAL)")
    return token


class Outcome:
    """Set ``unused`` when the transaction commits without storing the prepared version."""

    unused = False


@contextmanager
def discard_on_failure(deps: Deps, prepared: PreparedVersion) -> Iterator[Outcome]:
    """Around the transaction that stores ``prepared``: if it raises (nothing committed),
    or the block marks the yielded :class:`Outcome` ``unused``, destroy the token object of
    an HSM-protected version so none is left unreferenced. A failure to destroy it is
    logged (the object is then an orphan on the token, named by its label)."""
    outcome = Outcome()
    try:
        yield outcome
    except BaseException:
        _discard(deps, prepared)
        raise
    if outcome.unused:
        _discard(deps, prepared)
    elif prepared.hsm is not None:  # stored: an all-or-nothing batch may still roll it back
        deps.on_rollback(lambda: _discard(deps, prepared))


def _discard(deps: Deps, prepared: PreparedVersion) -> None:
    if prepared.hsm is not None and deps.custody.hsm is not None:
        try:
            destroy_hsm_key(deps.custody.hsm, prepared.hsm.cka_id)
        except Exception:
            log.warning("an unused HSM key (%s) could not be destroyed", prepared.hsm.label)


def new_version(deps: Deps, prepared: PreparedVersion, key_id: str, namespace: str,
                number: int) -> NewVersion:
    """The row of version ``number``: material wrapped with its namespace, key id, version
    and algorithm bound as associated data (custody/)."""
    material, public = prepared.material
    if prepared.hsm is not None:  # in the token: the row names it and holds no material
        label = object_label(key_id, number)
        if prepared.hsm.label != label:  # another rotation took the number it was made for
            relabel_hsm_key(_token(deps.custody.hsm), prepared.hsm.cka_id, label)
        return NewVersion(version=number, state=str(VersionState.ACTIVE),
                          wrapped_material=None, public_key_pem=public,
                          created_at=deps.clock(), hsm_key_id=prepared.hsm.cka_id)
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
