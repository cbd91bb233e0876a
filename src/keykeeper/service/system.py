"""System operations: health, init, unseal, seal, and dev-mode bootstrap."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from keykeeper import __version__
from keykeeper.authz.model import ROOT
from keykeeper.custody.keyring import Custody
from keykeeper.custody.passphrase import (
    MAX_PASSPHRASE_LENGTH,
    SealedRoot,
    seal_root_key,
    unseal_root_key,
)
from keykeeper.domain.names import DEFAULT_NAMESPACE
from keykeeper.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from keykeeper.service.auth import hash_token, new_token
from keykeeper.service.builtin import seed_builtin
from keykeeper.service.deps import Deps
from keykeeper.service.tokens import new_accessor
from keykeeper.store.system import NamespaceRow

__all__ = ["GENERATED_ROOT_TTL", "Health", "InitResult", "SystemService"]

GENERATED_ROOT_TTL = 3600  # seconds

log = logging.getLogger("keykeeper.system")

_SEAL_CONFIG = "seal.passphrase"
_SEAL_GENERATION = "seal.generation"
SEAL_CHECK_SECONDS = 1.0
UNSEAL_WAITERS = 8
UNSEAL_WAIT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Health:
    initialized: bool
    sealed: bool
    version: str


@dataclass(frozen=True, slots=True)
class InitResult:
    root_token: str
    unseal_passphrase: str

    def __repr__(self) -> str:
        return "InitResult(<secrets hidden>)"


class SystemService:
    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._initialized = False
        self._unseal_lock = threading.Lock()
        self._unseal_waiters = threading.BoundedSemaphore(UNSEAL_WAITERS)
        self._generation = 0
        self._checked_at = 0.0

    def _sealed_root(self) -> SealedRoot | None:
        with self._d.reading() as conn:
            data = self._d.system.get_config(conn, _SEAL_CONFIG)
        return None if data is None else SealedRoot.from_json(data)

    def initialized(self) -> bool:
        if not self._initialized:
            self._initialized = self._sealed_root() is not None
        return self._initialized

    def health(self) -> Health:
        return Health(initialized=self.initialized(), sealed=self.sealed(),
                      version=__version__)

    def init(self, passphrase: str | None = None, root_token: str | None = None) -> InitResult:
        """Create the root key, the ``default`` namespace and the first admin token, once.

        Raises AlreadyExists if already initialized, InvalidArgument for a short passphrase.
        The server stays sealed afterwards (as Vault does); unseal with the passphrase.
        """
        if self.initialized():
            raise AlreadyExists("keykeeper is already initialized")
        if passphrase is None:
            passphrase = secrets.token_urlsafe(32)
        if root_token is not None and len(root_token) < 8:
            raise InvalidArgument("root token must be at least 8 characters")
        token = root_token or new_token()
        root_key = os.urandom(32)
        with self._argon2_slot():  # Argon2id: 64 MiB each, so bounded like unseal
            sealed = seal_root_key(root_key, passphrase)
        now = self._d.clock()
        # Wrap the default namespace KEK under the new root key without unsealing.
        scratch = Custody(cache_entries=1, cache_ttl=1.0)
        scratch.unseal(root_key)
        wrapped_kek = scratch.new_wrapped_kek(DEFAULT_NAMESPACE)
        scratch.seal()
        try:
            with self._d.transaction() as conn:
                self._d.system.insert_config(conn, _SEAL_CONFIG, sealed.to_json())
                self._d.system.insert_namespace(conn, NamespaceRow(
                    name=DEFAULT_NAMESPACE, wrapped_kek=wrapped_kek,
                    allow_legacy_rsa_2048=False, created_at=now))
                self._d.identity.insert_token(
                    conn, token_hash=hash_token(token), accessor=new_accessor(), principal=ROOT,
                    display_name="root (init)", created_by="init", created_at=now,
                    expires_at=None, ttl=None)
                seed_builtin(conn, self._d.identity, self._d.system, now)
        except AlreadyExists:
            raise AlreadyExists("keykeeper is already initialized") from None
        self._initialized = True
        return InitResult(root_token=token, unseal_passphrase=passphrase)

    def unseal(self, passphrase: str) -> Health:
        """Unseal with the passphrase; InvalidArgument if it is wrong, even when already
        unsealed. Argon2id costs 64 MiB and ~0.3 s, so attempts run one at a time; at most
        ``UNSEAL_WAITERS`` wait (up to ``UNSEAL_WAIT_SECONDS``) and any more are refused with
        ResourceExhausted, so a flood of unseal calls cannot exhaust memory."""
        if len(passphrase) > MAX_PASSPHRASE_LENGTH:
            raise InvalidArgument(f"passphrase is at most {MAX_PASSPHRASE_LENGTH} characters")
        sealed = self._sealed_root()
        if sealed is None:
            raise FailedPrecondition("keykeeper is not initialized; run init first")
        with self._argon2_slot():
            # Checked even when already unsealed, so a wrong passphrase is always an error.
            root_key = unseal_root_key(sealed, passphrase)
            if self._d.custody.sealed:
                self._generation = self._read_generation()
                self._checked_at = time.monotonic()
                self._d.custody.unseal(root_key)
        return self.health()

    def generate_root(self, passphrase: str, ttl: int = GENERATED_ROOT_TTL) -> str:
        """Recovery: a new break-glass root token for whoever holds the unseal passphrase
        (as Vault's ``operator generate-root`` does with unseal keys), for when every
        security officer or approver is gone. The token expires after ``ttl`` seconds (1 h);
        InvalidArgument for a wrong passphrase, bounded like unseal. Whoever holds the
        passphrase and a copy of the store can already unwrap every key: this gives that
        holder no new power, and the audit trail records its use."""
        if len(passphrase) > MAX_PASSPHRASE_LENGTH:
            raise InvalidArgument(f"passphrase is at most {MAX_PASSPHRASE_LENGTH} characters")
        sealed = self._sealed_root()
        if sealed is None:
            raise FailedPrecondition("keykeeper is not initialized; run init first")
        with self._argon2_slot():
            unseal_root_key(sealed, passphrase)  # raises InvalidArgument when wrong
        token = new_token()
        now = self._d.clock()
        with self._d.transaction() as conn:
            self._d.identity.insert_token(
                conn, token_hash=hash_token(token), accessor=new_accessor(), principal=ROOT,
                display_name="root (generate-root)", created_by="generate-root",
                created_at=now, expires_at=now + timedelta(seconds=ttl), ttl=None)
        return token

    @contextmanager
    def _argon2_slot(self) -> Iterator[None]:
        """Run one Argon2id derivation at a time; at most ``UNSEAL_WAITERS`` callers wait
        (up to ``UNSEAL_WAIT_SECONDS``), any more get ResourceExhausted at once."""
        if not self._unseal_waiters.acquire(blocking=False):
            raise ResourceExhausted("too many init or unseal attempts in progress; retry "
                                    "shortly")
        try:
            if not self._unseal_lock.acquire(timeout=UNSEAL_WAIT_SECONDS):
                raise ResourceExhausted("another init or unseal attempt is in progress; "
                                        "retry shortly")
            try:
                yield
            finally:
                self._unseal_lock.release()
        finally:
            self._unseal_waiters.release()

    def _read_generation(self) -> int:
        with self._d.reading() as conn:
            return int(self._d.system.get_config(conn, _SEAL_GENERATION) or 0)

    def sealed(self) -> bool:
        """True while this process is sealed. At most once a second (``SEAL_CHECK_SECONDS``)
        it also reads the seal generation from the store: a seal made by another worker or
        node seals this process too, within a second. A store that cannot be read leaves
        the state as it is (the request then fails on its own storage access)."""
        custody = self._d.custody
        if custody.sealed:
            return True
        now = time.monotonic()
        if now - self._checked_at >= SEAL_CHECK_SECONDS:
            self._checked_at = now
            try:
                generation = self._read_generation()
            except Unavailable:
                return False
            if generation > self._generation:
                log.warning("sealed by another process (seal generation %d)", generation)
                custody.seal()
                return True
        return False

    def seal(self) -> Health:
        """Seal this process now, and every other worker and node within a second (the seal
        generation in the store moves on; see :meth:`sealed`)."""
        self._d.custody.seal()
        with self._d.transaction() as conn:
            generation = int(self._d.system.get_config(conn, _SEAL_GENERATION) or 0)
            self._d.system.set_config(conn, _SEAL_GENERATION, generation + 1)
        return self.health()
