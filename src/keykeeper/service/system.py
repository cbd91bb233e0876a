"""System operations: health, init, unseal (passphrase | shares | auto-unseal), seal,
generate-root. The seal record and material checks are in service/seal_admin.py, rekey
in service/rekey.py; docs/seal.md describes the providers."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from keykeeper import __version__
from keykeeper.authz.model import ROOT
from keykeeper.custody.hsm.token import LoginRefused
from keykeeper.custody.keyring import Custody
from keykeeper.custody.passphrase import seal_root_key
from keykeeper.custody.root import HsmRoot, RootWrapper
from keykeeper.custody.seal import SealRecord, check_seal_type, seal_type
from keykeeper.custody.seal_pkcs11 import SealedPkcs11, seal_in_hsm
from keykeeper.custody.seal_shamir import (
    DEFAULT_SHARES,
    DEFAULT_THRESHOLD,
    Progress,
    SealedShamir,
    check_shares,
    seal_with_shares,
)
from keykeeper.domain.names import DEFAULT_NAMESPACE
from keykeeper.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    KeykeeperError,
    Unavailable,
)
from keykeeper.service.auth import hash_token, new_token
from keykeeper.service.builtin import seed_builtin
from keykeeper.service.deps import Deps
from keykeeper.service.rekey import RekeyService
from keykeeper.service.seal_admin import (
    HSM_MISSING,
    Argon2Gate,
    MaterialGate,
    Opened,
    read_record,
    root_id_of,
    write_record,
)
from keykeeper.service.tokens import new_accessor
from keykeeper.store.system import NamespaceRow

__all__ = ["GENERATED_ROOT_TTL", "GeneratedRoot", "Health", "InitResult", "SystemService"]

GENERATED_ROOT_TTL = 3600  # seconds

log = logging.getLogger("keykeeper.system")

_SEAL_GENERATION = "seal.generation"
SEAL_CHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Health:
    """``seal_type`` None before init; ``progress``/``threshold``/``nonce``: the shamir
    unseal attempt while sealed; ``seal_error``: why a pkcs11 auto-unseal failed."""

    initialized: bool
    sealed: bool
    version: str
    seal_type: str | None = None
    progress: int | None = None
    threshold: int | None = None
    nonce: str | None = None
    seal_error: str | None = None


@dataclass(frozen=True, slots=True)
class InitResult:
    """Shown once: the root token and, by seal type, the passphrase or the base64
    shares (``keys``); a pkcs11 seal has no unseal material."""

    root_token: str
    unseal_passphrase: str | None = None
    seal_type: str = "passphrase"
    keys: tuple[str, ...] = field(default=())
    secret_shares: int | None = None
    secret_threshold: int | None = None

    def __repr__(self) -> str:
        return "InitResult(<secrets hidden>)"


@dataclass(frozen=True, slots=True)
class GeneratedRoot:
    """A recovery root token (``root_token`` None while shares are still being given)."""

    root_token: str | None
    expires_in: int
    progress: int | None = None
    threshold: int | None = None
    nonce: str | None = None

    def __repr__(self) -> str:
        return f"GeneratedRoot(<hidden>, progress={self.progress})"


class SystemService:
    def __init__(self, deps: Deps, *,
                 on_root_change: Callable[[], None] | None = None) -> None:
        self._d = deps
        #: Called after this process starts using a root other than the one it used
        #: before (a rekey committed here, one followed from elsewhere, an unseal):
        #: caches of wrapped KEKs drop what they hold (facade.py: KeyLookup.root_changed).
        self.on_root_change = on_root_change or (lambda: None)
        self._initialized = False
        self.argon2 = Argon2Gate()
        self._unseal_gate = MaterialGate(self.argon2, deps.custody.hsm)
        self._root_gate = MaterialGate(self.argon2, deps.custody.hsm)
        self._unseal_lock = threading.Lock()
        self._generation = 0
        self._checked_at = 0.0
        self._record: SealRecord | None = None
        # pkcs11: why the last auto-unseal failed; whether it is still owed (start-up,
        # not an operator's seal).
        self.seal_error: str | None = None
        self._auto_pending = False
        #: Rekey (service/rekey.py): change the seal type or its material.
        self.rekey = RekeyService(deps, self)

    # -- reading state ----------------------------------------------------------------------
    def record(self, *, fresh: bool = False) -> SealRecord | None:
        """The seal record (cached once initialized; ``fresh`` reads the store)."""
        if fresh or self._record is None:
            self._record = read_record(self._d)
        return self._record

    def initialized(self) -> bool:
        if not self._initialized:
            self._initialized = self.record(fresh=True) is not None
        return self._initialized

    def health(self) -> Health:
        sealed = self.sealed()
        record = self.record(fresh=sealed) if self.initialized() else None
        if record is None:
            return Health(initialized=False, sealed=True, version=__version__)
        kind = seal_type(record)
        progress: Progress | None = None
        if sealed and isinstance(record, SealedShamir):
            progress = self._unseal_gate.progress(record)
        return Health(initialized=True, sealed=sealed, version=__version__, seal_type=kind,
                      progress=progress.progress if progress else None,
                      threshold=progress.threshold if progress else None,
                      nonce=progress.nonce if progress else None,
                      seal_error=self.seal_error if sealed and kind == "pkcs11" else None)

    # -- init -------------------------------------------------------------------------------
    def init(self, passphrase: str | None = None, root_token: str | None = None, *,
             seal: str = "passphrase", secret_shares: int | None = None,
             secret_threshold: int | None = None) -> InitResult:
        """Create the root secret, the seal record, the ``default`` namespace and the first
        admin token, once (docs/seal.md).

        ``seal``: ``passphrase`` (``passphrase`` given or generated), ``shamir``
        (``secret_shares``/``secret_threshold``, defaults 5 and 3: the shares come back
        once) or ``pkcs11`` (a root key generated in the configured token; the server
        unseals itself at once). Passphrase and shamir stay sealed afterwards, as Vault.
        Raises AlreadyExists if initialized, InvalidArgument for bad parameters,
        FailedPrecondition for pkcs11 without a token, Unavailable when the token fails.
        """
        if self.initialized():
            raise AlreadyExists("keykeeper is already initialized")
        check_seal_type(seal)
        if passphrase is not None and seal != "passphrase":
            raise InvalidArgument(f"a passphrase is for the passphrase seal, not {seal}")
        if (secret_shares is not None or secret_threshold is not None) and seal != "shamir":
            raise InvalidArgument(f"secret_shares and secret_threshold are for the shamir "
                                  f"seal, not {seal}")
        if root_token is not None and len(root_token) < 8:
            raise InvalidArgument("root token must be at least 8 characters")
        token = root_token or new_token()
        root_key = os.urandom(32)
        wrapper: RootWrapper | None = None
        result_kw: dict[str, object] = {}
        record: SealRecord
        if seal == "passphrase":
            passphrase = passphrase if passphrase is not None else secrets.token_urlsafe(32)
            with self.argon2.slot():  # Argon2id: 64 MiB each, so bounded like unseal
                record = seal_root_key(root_key, passphrase)
            result_kw["unseal_passphrase"] = passphrase
        elif seal == "shamir":
            n = DEFAULT_SHARES if secret_shares is None else secret_shares
            m = DEFAULT_THRESHOLD if secret_threshold is None else secret_threshold
            check_shares(n, m)
            record, shares = seal_with_shares(root_key, n, m)
            result_kw.update(keys=tuple(shares), secret_shares=n, secret_threshold=m)
        else:
            if self._d.custody.hsm is None:
                raise FailedPrecondition(HSM_MISSING)
            record, wrapper = seal_in_hsm(self._d.custody.hsm, root_key)
        now = self._d.clock()
        # Wrap the default namespace KEK under the new root without unsealing.
        scratch = Custody(cache_entries=1, cache_ttl=1.0, hsm=self._d.custody.hsm)
        scratch.unseal(root_key, wrapper)
        wrapped_kek = scratch.new_wrapped_kek(DEFAULT_NAMESPACE)
        scratch.seal()
        try:
            with self._d.transaction() as conn:
                write_record(self._d, conn, record, first=True)
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
        self._record = record
        if seal == "pkcs11":
            self._finish_unseal(Opened(bytearray(root_key), wrapper))
        return InitResult(root_token=token, seal_type=seal, **result_kw)  # type: ignore[arg-type]

    # -- unseal -----------------------------------------------------------------------------
    def unseal(self, passphrase: str | None = None, *, key: str | None = None,
               nonce: str | None = None, reset: bool = False) -> Health:
        """Unseal with the material of the seal type: the ``passphrase`` (a wrong one is an
        error even when already unsealed); one base64 share ``key`` per call until the
        threshold (``nonce`` optionally pins the attempt; ``reset`` drops the shares given
        so far); under pkcs11 no material: reads the PIN again (KEYKEEPER_PKCS11_PIN_FILE,
        else KEYKEEPER_PKCS11_PIN) and tries the auto-unseal once -- after the token
        refused the PIN, only if the PIN changed (docs/seal.md).

        Raises FailedPrecondition before init, after an operator's seal under pkcs11
        (restart to auto-unseal) or for a stale nonce; InvalidArgument for wrong or
        malformed material (shares that do not combine also reset the progress);
        ResourceExhausted when too many Argon2id attempts wait; Unavailable (pkcs11) when
        the token fails."""
        record = self.record(fresh=True) if self.initialized() else None
        if record is None:
            raise FailedPrecondition("keykeeper is not initialized; run init first")
        if reset:
            if passphrase is not None or key is not None:
                raise InvalidArgument("reset takes no passphrase or share")
            self._unseal_gate.shares.reset()
            return self.health()
        if isinstance(record, SealedPkcs11):
            if passphrase is not None or key is not None:
                raise InvalidArgument("this key store is sealed by a pkcs11 token: unseal "
                                      "takes no passphrase or share")
            if self._d.custody.sealed:
                if not self._auto_pending:
                    raise FailedPrecondition(
                        "sealed by an operator: the pkcs11 seal unseals itself when the "
                        "server starts; restart the server")
                self._reload_pin()
                self.auto_unseal(raise_errors=True)
            return self.health()
        if isinstance(record, SealedShamir) and not self._d.custody.sealed:
            if key is None:
                raise InvalidArgument("this key store is sealed with Shamir shares: give "
                                      "key (one base64 share)")
            return self.health()  # already unsealed: the share is not kept
        opened = self._unseal_gate.present(record, passphrase=passphrase, key=key,
                                           nonce=nonce)
        if isinstance(opened, Opened):
            self._finish_unseal(opened)
        if not self._d.custody.sealed:
            # A share that raced the one completing the threshold is not kept in memory.
            self._unseal_gate.shares.reset()
        return self.health()

    def _reload_pin(self) -> None:
        """Before an explicit pkcs11 unseal: read the PIN again, so a corrected PIN file
        counts without a restart. After the token refused the PIN, the same PIN is not
        tried again (Unavailable, no login): this call needs no credentials, and a real
        HSM locks the PIN after a few failed logins."""
        token = self._d.custody.hsm
        if token is None:
            return
        if not token.login_refused:
            token.reload_pin()
        elif not token.reload_pin(only_if_changed=True):
            raise Unavailable("the HSM refused this PIN and it has not changed: no login is "
                              "tried, so the token does not lock the PIN; correct "
                              "KEYKEEPER_PKCS11_PIN_FILE, then unseal again")

    def _finish_unseal(self, opened: Opened) -> None:
        try:
            with self._unseal_lock:
                if self._d.custody.sealed:
                    self._generation = self._read_generation()
                    self._checked_at = time.monotonic()
                    self._d.custody.unseal(bytes(opened.root_secret), opened.wrapper)
                    self.on_root_change()  # a rekey may have rewrapped the KEKs meanwhile
                    self._auto_pending = False
                    self.seal_error = None
        finally:
            opened.zero()

    def needs_auto_unseal(self) -> bool:
        """True while a pkcs11 auto-unseal is owed (at start, until it succeeds)."""
        return self._auto_pending and self._d.custody.sealed

    def retry_auto_unseal(self) -> bool:
        """The periodic retry (config.py, every ``AUTO_UNSEAL_RETRY_SECONDS``) of an owed
        pkcs11 auto-unseal. Token faults (missing token, library error) are retried each
        time; after the token *refused the PIN* nothing is tried (a real HSM locks the PIN
        after a few failures) until the PIN file holds another PIN -- then once. True
        when this call unsealed."""
        if not self.needs_auto_unseal():
            return False
        token = self._d.custody.hsm
        if token is not None and token.login_refused:
            try:
                if not token.reload_pin(only_if_changed=True):
                    return False
            except KeykeeperError as exc:
                self.seal_error = exc.detail
                return False
            log.info("the PKCS#11 PIN changed: trying the auto-unseal once")
        return self.auto_unseal()

    def auto_unseal(self, *, raise_errors: bool = False) -> bool:
        """Unseal with the configured token when the seal is pkcs11 (at start, and on retry
        while it fails). False, with the reason in :attr:`seal_error` and the log, when
        the token is unusable: the server stays sealed, nothing falls back. A refused PIN
        (:class:`~keykeeper.custody.hsm.token.LoginRefused`) stops the retries
        (:meth:`retry_auto_unseal`)."""
        record = self.record(fresh=True) if self.initialized() else None
        if not isinstance(record, SealedPkcs11) or not self._d.custody.sealed:
            return False
        self._auto_pending = True
        try:
            opened = self._unseal_gate.present(record)
        except KeykeeperError as exc:
            detail = exc.detail
            if isinstance(exc, LoginRefused):
                detail = (f"the HSM refused the login ({exc.reason}); automatic unseal "
                          "retries are stopped so the token does not lock the PIN: correct "
                          "the PIN (KEYKEEPER_PKCS11_PIN_FILE), then run `keykeeper unseal` "
                          "or restart the server")
            if self.seal_error != detail:
                log.warning("pkcs11 auto-unseal failed, staying sealed: %s", detail)
            self.seal_error = detail
            if raise_errors:
                raise
            return False
        assert isinstance(opened, Opened)
        self._finish_unseal(opened)
        log.info("unsealed by the pkcs11 token (auto-unseal)")
        return True

    # -- generate-root ----------------------------------------------------------------------
    def generate_root(self, passphrase: str | None = None, *, key: str | None = None,
                      nonce: str | None = None, reset: bool = False,
                      ttl: int = GENERATED_ROOT_TTL) -> GeneratedRoot:
        """Recovery: a new break-glass root token for whoever holds the unseal material
        (as Vault's ``operator generate-root``), for when every security officer or
        approver is gone: the passphrase, or a threshold of shares given one at a time
        (progress as unseal; ``reset``). The token expires after ``ttl`` seconds (1 h).
        Refused (FailedPrecondition) under pkcs11: its material is the server's own
        token, so anyone able to call the server would get root (docs/seal.md).
        InvalidArgument for wrong material, bounded like unseal."""
        record = self.record(fresh=True) if self.initialized() else None
        if record is None:
            raise FailedPrecondition("keykeeper is not initialized; run init first")
        if isinstance(record, SealedPkcs11):
            raise FailedPrecondition(
                "generate-root is refused under the pkcs11 seal: it has no unseal material "
                "a custodian could present; rekey to shamir or passphrase first (sys.rekey)")
        if reset:
            self._root_gate.shares.reset()
            p = self._root_gate.progress(record)
            return GeneratedRoot(None, ttl, p.progress, p.threshold, p.nonce)
        opened = self._root_gate.present(record, passphrase=passphrase, key=key, nonce=nonce)
        if isinstance(opened, Progress):
            return GeneratedRoot(None, ttl, opened.progress, opened.threshold, opened.nonce)
        opened.zero()
        token = new_token()
        now = self._d.clock()
        with self._d.transaction() as conn:
            self._d.identity.insert_token(
                conn, token_hash=hash_token(token), accessor=new_accessor(), principal=ROOT,
                display_name="root (generate-root)", created_by="generate-root",
                created_at=now, expires_at=now + timedelta(seconds=ttl), ttl=None)
        return GeneratedRoot(token, ttl)

    # -- seal -------------------------------------------------------------------------------
    def _read_generation(self) -> int:
        with self._d.reading() as conn:
            return int(self._d.system.get_config(conn, _SEAL_GENERATION) or 0)

    def sealed(self) -> bool:
        """True while this process is sealed. At most once a second (``SEAL_CHECK_SECONDS``)
        it also reads the seal generation and record from the store: a seal made by
        another worker or node seals this process too, and a rekey made elsewhere switches
        the root that wraps new KEKs here, within a second. A store that cannot be read
        leaves the state as it is (the request then fails on its own storage access)."""
        custody = self._d.custody
        if custody.sealed:
            return True
        now = time.monotonic()
        if now - self._checked_at >= SEAL_CHECK_SECONDS:
            self._checked_at = now
            try:
                generation = self._read_generation()
                record = self.record(fresh=True)
            except Unavailable:
                return False
            if generation > self._generation:
                log.warning("sealed by another process (seal generation %d)", generation)
                custody.seal()
                return True
            if record is not None and root_id_of(record) != custody.root_id:
                self.follow_root(record)
                return custody.sealed
        return False

    def follow_root(self, record: SealRecord) -> None:
        """Wrap new KEKs with the root ``record`` names (after a rekey); a node without
        the record's token seals itself, with the reason logged."""
        custody = self._d.custody
        try:
            if isinstance(record, SealedPkcs11):
                if custody.hsm is None:
                    raise FailedPrecondition(HSM_MISSING)
                custody.use_root(HsmRoot(custody.hsm, record.key_id))
            else:
                custody.use_root(None)
            self.on_root_change()
            log.info("the seal changed (rekey): new KEKs are wrapped by %s", custody.root_id)
        except KeykeeperError as exc:
            log.warning("the seal changed to %s and this node cannot follow, sealing: %s",
                        seal_type(record), exc.detail)
            custody.seal()

    def seal(self) -> Health:
        """Seal this process now, and every other worker and node within a second (the seal
        generation in the store moves on; see :meth:`sealed`). Under pkcs11 only a restart
        unseals again. A rekey in progress here is cancelled (its shares forgotten)."""
        self._auto_pending = False
        self._d.custody.seal()
        self.rekey.cancel()
        with self._d.transaction() as conn:
            generation = int(self._d.system.get_config(conn, _SEAL_GENERATION) or 0)
            self._d.system.set_config(conn, _SEAL_GENERATION, generation + 1)
        return self.health()

    def adopt(self, record: SealRecord) -> None:
        """After a rekey committed here: cache ``record`` and drop share progress."""
        self._record = record
        self._unseal_gate.shares.reset()
        self._root_gate.shares.reset()

