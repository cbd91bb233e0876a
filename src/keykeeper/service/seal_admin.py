"""The seal record in the store, and checking unseal material against it.

Used by init, unseal, generate-root and rekey (service/system.py, service/rekey.py):

* :func:`read_record` / :func:`write_record` -- the ``seal`` configuration value
  (custody/seal.py), read from ``seal.passphrase`` for stores made before seal types;
* :class:`Argon2Gate` -- one Argon2id derivation at a time (64 MiB each), a bounded queue;
* :class:`MaterialGate` -- one attempt at presenting unseal material: a passphrase, shares
  one at a time (its own :class:`~keykeeper.custody.seal_shamir.ShareCollector`), or the
  configured PKCS#11 token; answers the root secret (and HSM root) or the progress.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from keykeeper.custody.hsm.token import Token
from keykeeper.custody.passphrase import MAX_PASSPHRASE_LENGTH, SealedRoot, unseal_root_key
from keykeeper.custody.root import (
    HSM_BLOB_MAGIC,
    KEY_ID_SIZE,
    HsmRoot,
    RootWrapper,
    is_hsm_blob,
)
from keykeeper.custody.seal import SealRecord, record_from_json, record_to_json, seal_type
from keykeeper.custody.seal_pkcs11 import SealedPkcs11, open_in_hsm
from keykeeper.custody.seal_shamir import (
    Progress,
    SealedShamir,
    ShareCollector,
    open_with_key,
)
from keykeeper.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from keykeeper.service.deps import Deps

__all__ = ["Argon2Gate", "MaterialGate", "Opened", "hsm_root_of", "read_record",
           "required_material", "root_id_of", "write_record"]

SEAL_CONFIG = "seal"
LEGACY_CONFIG = "seal.passphrase"
UNSEAL_WAITERS = 8
UNSEAL_WAIT_SECONDS = 10.0
HSM_MISSING = ("the pkcs11 seal needs a PKCS#11 token on this node: set "
            "KEYKEEPER_PKCS11_TOKEN_LABEL (or _SERIAL) and KEYKEEPER_PKCS11_PIN_FILE")


def read_record(deps: Deps, conn: Connection | None = None) -> SealRecord | None:
    """The stored seal record, or None before init."""
    if conn is None:
        with deps.reading() as c:
            return read_record(deps, c)
    data: Any = deps.system.get_config(conn, SEAL_CONFIG)
    if data is not None:
        return record_from_json(data)
    legacy: Any = deps.system.get_config(conn, LEGACY_CONFIG)
    return None if legacy is None else SealedRoot.from_json(legacy)


def write_record(deps: Deps, conn: Connection, record: SealRecord, *, first: bool) -> None:
    """Store ``record`` (insert at init: AlreadyExists if another init won; else replace,
    and blank a legacy ``seal.passphrase`` value)."""
    if first:
        deps.system.insert_config(conn, SEAL_CONFIG, record_to_json(record))
        return
    deps.system.set_config(conn, SEAL_CONFIG, record_to_json(record))
    if deps.system.get_config(conn, LEGACY_CONFIG) is not None:
        deps.system.set_config(conn, LEGACY_CONFIG, None)


def required_material(record: SealRecord) -> int:
    """How many pieces of material open ``record``: 1 passphrase, M shares, 0 (pkcs11)."""
    if isinstance(record, SealedShamir):
        return record.threshold
    return 0 if isinstance(record, SealedPkcs11) else 1


def root_id_of(record: SealRecord) -> str:
    """The custody root id (custody/root.py) that ``record`` implies."""
    return ("pkcs11:" + record.key_id.hex()) if isinstance(record, SealedPkcs11) \
        else "software"


def hsm_root_of(token: Token | None, blob: bytes) -> HsmRoot:
    """The HSM root that wrapped ``blob`` (its CKA_ID is in the blob)."""
    if token is None:
        raise FailedPrecondition(HSM_MISSING)
    assert is_hsm_blob(blob) and blob[:4] == HSM_BLOB_MAGIC
    return HsmRoot(token, blob[4:4 + KEY_ID_SIZE])


class Argon2Gate:
    """Run one Argon2id derivation at a time; at most ``UNSEAL_WAITERS`` callers wait (up
    to ``UNSEAL_WAIT_SECONDS``), any more get ResourceExhausted at once, so a flood of
    unseal calls cannot exhaust memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters = threading.BoundedSemaphore(UNSEAL_WAITERS)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._waiters.acquire(blocking=False):
            raise ResourceExhausted("too many init or unseal attempts in progress; retry "
                                    "shortly")
        try:
            if not self._lock.acquire(timeout=UNSEAL_WAIT_SECONDS):
                raise ResourceExhausted("another init or unseal attempt is in progress; "
                                        "retry shortly")
            try:
                yield
            finally:
                self._lock.release()
        finally:
            self._waiters.release()


@dataclass(slots=True)
class Opened:
    """The root secret (zero it when done) and, under pkcs11, the HSM root."""

    root_secret: bytearray
    wrapper: RootWrapper | None = None

    def __repr__(self) -> str:
        return "Opened(<root secret hidden>)"

    def zero(self) -> None:
        for i in range(len(self.root_secret)):
            self.root_secret[i] = 0


class MaterialGate:
    """Checks unseal material against a seal record for one purpose (unseal, rekey,
    generate-root); shares are collected across calls until the threshold."""

    def __init__(self, argon2: Argon2Gate, token: Token | None) -> None:
        self._argon2 = argon2
        self._token = token
        self.shares = ShareCollector()

    def progress(self, record: SealRecord) -> Progress:
        return self.shares.progress(required_material(record))

    def present(self, record: SealRecord, *, passphrase: str | None = None,
                key: str | None = None, nonce: str | None = None) -> Opened | Progress:
        """Check the material. InvalidArgument for the wrong kind of material, a wrong
        passphrase, a malformed or repeated share, or shares that do not combine (which
        also resets the progress); FailedPrecondition for a stale ``nonce`` or a pkcs11
        seal without a token; Unavailable when the token fails."""
        kind = seal_type(record)
        if isinstance(record, SealedRoot):
            if passphrase is None or key is not None:
                raise InvalidArgument("this key store is sealed with a passphrase: give "
                                      "passphrase (not a share)")
            if len(passphrase) > MAX_PASSPHRASE_LENGTH:
                raise InvalidArgument(f"passphrase is at most {MAX_PASSPHRASE_LENGTH} "
                                      "characters")
            with self._argon2.slot():
                return Opened(bytearray(unseal_root_key(record, passphrase)))
        if isinstance(record, SealedShamir):
            if key is None or passphrase is not None:
                raise InvalidArgument("this key store is sealed with Shamir shares: give "
                                      "key (one base64 share), not a passphrase")
            unseal_key = self.shares.add(key, record.threshold, nonce)
            if unseal_key is None:
                return self.shares.progress(record.threshold)
            try:
                return Opened(bytearray(open_with_key(record, bytes(unseal_key))))
            finally:
                for i in range(len(unseal_key)):
                    unseal_key[i] = 0
        if passphrase is not None or key is not None:
            raise InvalidArgument(f"this key store is sealed by a {kind} token: it takes no "
                                  "passphrase or share")
        if self._token is None:
            raise FailedPrecondition(HSM_MISSING)
        secret, root = open_in_hsm(self._token, record)
        return Opened(bytearray(secret), root)
