"""Rekey: change the seal type and/or its material, with the current unseal material.

Vault's ``operator rekey`` shape: :meth:`RekeyService.start` (``sys.rekey``) names the new
seal and answers a ``nonce``; :meth:`RekeyService.update` takes the current material with
that nonce -- the passphrase, shares one at a time from several people until the current
threshold, or nothing under pkcs11 (the configured token is the material) -- and at the
end answers the new material once (new shares, or a generated passphrase).

The root secret never changes, so derived keys (audit HMAC, receipts) and every KEK stay
the same. Switching to, from or between HSM keys re-wraps every namespace KEK in the same
transaction that stores the new seal record; other nodes keep unwrapping KEKs wrapped by
either root and switch within a second (service/system.py ``sealed``). An HSM root key
replaced by a rekey stays in the token (nodes may still use it for that second); delete it
with the token's tools afterwards (docs/seal.md).
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from keykeeper.custody.passphrase import seal_root_key
from keykeeper.custody.root import RootWrapper, SoftwareRoot, is_hsm_blob, kek_aad
from keykeeper.custody.seal import SealRecord, check_seal_type, seal_type
from keykeeper.custody.seal_pkcs11 import seal_in_hsm
from keykeeper.custody.seal_shamir import (
    DEFAULT_SHARES,
    DEFAULT_THRESHOLD,
    Progress,
    check_shares,
    seal_with_shares,
)
from keykeeper.errors import FailedPrecondition, InvalidArgument
from keykeeper.service.deps import Deps
from keykeeper.service.seal_admin import (
    HSM_MISSING,
    MaterialGate,
    Opened,
    hsm_root_of,
    required_material,
    root_id_of,
    write_record,
)
from keykeeper.store.namespaces import NamespaceRepository

if TYPE_CHECKING:
    from keykeeper.service.system import SystemService

__all__ = ["RekeyResult", "RekeyService", "RekeyStatus"]

_NAMESPACES = NamespaceRepository()


@dataclass(frozen=True, slots=True)
class RekeyStatus:
    started: bool
    nonce: str = ""
    seal_type: str = ""          # the current seal
    new_seal_type: str = ""
    progress: int = 0            # current material given so far
    required: int = 0            # current material needed (shares threshold; 1; 0)
    new_shares: int | None = None
    new_threshold: int | None = None


@dataclass(frozen=True, slots=True)
class RekeyResult:
    """``complete`` with the new material (shown once), else the progress."""

    complete: bool
    status: RekeyStatus
    keys: tuple[str, ...] = field(default=())
    unseal_passphrase: str | None = None

    def __repr__(self) -> str:
        return f"RekeyResult(complete={self.complete}, <material hidden>)"


@dataclass(slots=True)
class _Attempt:
    nonce: str
    new_seal: str
    shares: int | None
    threshold: int | None
    passphrase: str | None = field(repr=False)
    gate: MaterialGate = field(repr=False)


class RekeyService:
    """One rekey attempt at a time per server process (as Vault: per node)."""

    def __init__(self, deps: Deps, system: SystemService) -> None:
        self._d = deps
        self._system = system
        self._lock = threading.Lock()
        self._attempt: _Attempt | None = None

    def _record(self) -> SealRecord:
        record = self._system.record(fresh=True)
        if record is None:
            raise FailedPrecondition("keykeeper is not initialized; run init first")
        return record

    def status(self) -> RekeyStatus:
        record = self._record()
        with self._lock:
            a = self._attempt
            if a is None:
                return RekeyStatus(started=False, seal_type=seal_type(record),
                                   required=required_material(record))
            p = a.gate.progress(record)
            return RekeyStatus(True, a.nonce, seal_type(record), a.new_seal, p.progress,
                               required_material(record), a.shares, a.threshold)

    def start(self, seal: str | None = None, *, secret_shares: int | None = None,
              secret_threshold: int | None = None,
              passphrase: str | None = None) -> RekeyStatus:
        """Begin a rekey to ``seal`` (default: the current type, with new material).
        ``secret_shares``/``secret_threshold`` (shamir; 5 and 3), ``passphrase`` (the new
        passphrase; generated and shown at the end when absent). FailedPrecondition when
        one is in progress (cancel it first) or pkcs11 without a token; InvalidArgument
        for bad parameters."""
        record = self._record()
        new_seal = check_seal_type(seal or seal_type(record))
        if passphrase is not None and new_seal != "passphrase":
            raise InvalidArgument(f"a passphrase is for the passphrase seal, not {new_seal}")
        if passphrase is not None and not 12 <= len(passphrase) <= 1024:
            raise InvalidArgument("passphrase must be 12 to 1024 characters")
        n = m = None
        if new_seal == "shamir":
            n = DEFAULT_SHARES if secret_shares is None else secret_shares
            m = DEFAULT_THRESHOLD if secret_threshold is None else secret_threshold
            check_shares(n, m)
        elif secret_shares is not None or secret_threshold is not None:
            raise InvalidArgument(f"secret_shares and secret_threshold are for the shamir "
                                  f"seal, not {new_seal}")
        if new_seal == "pkcs11" and self._d.custody.hsm is None:
            raise FailedPrecondition(HSM_MISSING)
        with self._lock:
            if self._attempt is not None:
                raise FailedPrecondition("a rekey is already in progress; cancel it first")
            self._attempt = _Attempt(secrets.token_hex(16), new_seal, n, m, passphrase,
                                     MaterialGate(self._system.argon2, self._d.custody.hsm))
        return self.status()

    def cancel(self) -> RekeyStatus:
        """Forget the attempt and any shares given to it."""
        with self._lock:
            if self._attempt is not None:
                self._attempt.gate.shares.reset()
            self._attempt = None
        return self.status()

    def update(self, nonce: str, *, passphrase: str | None = None,
               key: str | None = None) -> RekeyResult:
        """Give current material for the attempt named by ``nonce``. At the threshold the
        new seal is made and stored with the KEKs re-wrapped (one transaction) and the
        answer holds the new material, once. FailedPrecondition when no attempt or a
        stale nonce; InvalidArgument for wrong material (shares that do not combine reset
        the progress); Unavailable when a token fails (nothing changed)."""
        record = self._record()
        with self._lock:
            a = self._attempt
            if a is None:
                raise FailedPrecondition("no rekey is in progress; start one with rekey init")
            if not hmac.compare_digest(nonce.encode("utf-8", "replace"), a.nonce.encode()):
                raise FailedPrecondition("the nonce does not match the rekey in progress "
                                         "(its nonce is in rekey status)")
        opened = a.gate.present(record, passphrase=passphrase, key=key)
        if isinstance(opened, Progress):
            return RekeyResult(False, self.status())
        with self._lock:
            if self._attempt is not a:
                opened.zero()
                raise FailedPrecondition("the rekey was cancelled or completed meanwhile")
            self._attempt = None
        try:
            return self._complete(a, record, opened)
        finally:
            opened.zero()

    def _complete(self, a: _Attempt, record: SealRecord, opened: Opened) -> RekeyResult:
        secret = bytes(opened.root_secret)
        keys: tuple[str, ...] = ()
        new_passphrase: str | None = None
        new_root: RootWrapper | None = None
        new_record: SealRecord
        if a.new_seal == "passphrase":
            new_passphrase = a.passphrase or secrets.token_urlsafe(32)
            with self._system.argon2.slot():
                new_record = seal_root_key(secret, new_passphrase)
        elif a.new_seal == "shamir":
            assert a.shares is not None and a.threshold is not None
            new_record, shares = seal_with_shares(secret, a.shares, a.threshold)
            keys = tuple(shares)
        else:
            if self._d.custody.hsm is None:
                raise FailedPrecondition(HSM_MISSING)
            new_record, new_root = seal_in_hsm(self._d.custody.hsm, secret)
        rewrap = root_id_of(record) != root_id_of(new_record)
        with self._d.transaction() as conn:
            if rewrap:
                self._rewrap_keks(conn, secret, new_root)
            write_record(self._d, conn, new_record, first=False)
        self._system.adopt(new_record)
        if not self._d.custody.sealed:
            self._d.custody.use_root(new_root)
        if rewrap:  # wrapped KEKs cached before the commit name the old root
            self._system.on_root_change()
        status = RekeyStatus(False, seal_type=seal_type(new_record),
                             required=required_material(new_record))
        return RekeyResult(True, status, keys=keys,
                           unseal_passphrase=None if a.passphrase else new_passphrase)

    def _rewrap_keks(self, conn: Connection, secret: bytes, new_root: RootWrapper | None) -> None:
        """Every live namespace KEK, unwrapped by the root that wrapped it and wrapped by
        the new one (the KEK's value never changes)."""
        target: RootWrapper = new_root if new_root is not None else SoftwareRoot(secret)
        old_software = SoftwareRoot(secret)
        for ns in _NAMESPACES.list_namespaces(conn):
            if not ns.wrapped_kek:
                continue
            aad = kek_aad(ns.name)
            old = (hsm_root_of(self._d.custody.hsm, ns.wrapped_kek)
                   if is_hsm_blob(ns.wrapped_kek) else old_software)
            kek = old.unwrap(ns.wrapped_kek, aad)
            _NAMESPACES.update(conn, ns.name,
                               wrapped_kek=target.wrap(kek, aad))

