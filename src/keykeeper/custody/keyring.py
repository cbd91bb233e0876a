"""The key hierarchy: root key (sealed) -> namespace KEKs -> key-version material.

* The 256-bit root secret exists in memory only while unsealed; HKDF subkeys of it
  (:meth:`Custody.derive`) key the audit trail, receipts and page tokens.
* Each namespace has its own 256-bit key-encryption key, stored wrapped by the root
  (custody/root.py: the root secret itself under the passphrase and shamir seals, an
  AES-256 key inside the HSM under pkcs11) with AES-256-GCM; associated data
  ``keykeeper/kek/v1 || 0 || namespace``.
* Each key version's material is stored wrapped by its namespace KEK with
  AES-256-GCM; the associated data binds namespace, key id, version and
  algorithm, so a blob copied to another row fails to unwrap.

Unwrapped material never leaves custody/ except as a loaded crypto handle held
in a bounded TTL cache, which is cleared on seal and per key on state changes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keykeeper.crypto import KeyHandle, load_private
from keykeeper.crypto.aead import aead_open, aead_seal
from keykeeper.crypto.registry import get_spec
from keykeeper.custody.cache import TTLCache
from keykeeper.custody.hsm.handles import hsm_handle
from keykeeper.custody.hsm.token import Token
from keykeeper.custody.root import RootWrapper, SoftwareRoot, is_hsm_blob, kek_aad
from keykeeper.errors import DecryptionFailed, FailedPrecondition, Internal, Sealed

__all__ = ["Custody", "WrappedVersion"]

log = logging.getLogger("keykeeper.custody")


@dataclass(frozen=True, slots=True)
class WrappedVersion:
    """What custody needs from the store to unwrap one key version."""

    namespace: str
    wrapped_kek: bytes
    algorithm: str
    wrapped_material: bytes
    # An HSM-protected version (issue 6 §2): its token object's CKA_ID (hex) and public
    # key (PEM, key pairs only); wrapped_kek and wrapped_material are then unused.
    hsm_key_id: str | None = None
    public_key_pem: str | None = None


_kek_aad = kek_aad


def _material_aad(namespace: str, key_id: str, version: int, algorithm: str) -> bytes:
    return b"\x00".join((b"keykeeper/material/v1", namespace.encode(), key_id.encode(),
                         str(version).encode(), algorithm.encode()))


class Custody:
    """Holds the root key while unsealed and wraps and unwraps everything below it."""

    def __init__(self, *, cache_entries: int = 10_000, cache_ttl: float = 300.0,
                 hsm: Token | None = None) -> None:
        #: The configured PKCS#11 token (KEYKEEPER_PKCS11_*), or None: used by the
        #: ``pkcs11`` seal and by keys created with ``protection: "hsm"``.
        self.hsm = hsm
        self._root: bytearray | None = None          # the root secret
        self._wrapper: RootWrapper | None = None      # what wraps the KEKs
        self._hsm_root: RootWrapper | None = None     # the HSM root, when one is in use
        self._keks: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.handles: TTLCache[tuple[str, int], KeyHandle] = TTLCache(cache_entries, cache_ttl)
        self._seal_listeners: list[Callable[[], None]] = []

    # -- seal state -------------------------------------------------------------------------
    @property
    def sealed(self) -> bool:
        return self._root is None

    def unseal(self, root_key: bytes, wrapper: RootWrapper | None = None) -> None:
        """Hold ``root_key`` (the 32-byte root secret) until :meth:`seal`. ``wrapper`` wraps
        the KEKs: an HSM root under the pkcs11 seal; None (software seals): the root
        secret itself."""
        if len(root_key) != 32:
            raise Internal("root key has the wrong length")
        with self._lock:
            self._root = bytearray(root_key)
            self._set_wrapper(wrapper)

    def _set_wrapper(self, wrapper: RootWrapper | None) -> None:
        assert self._root is not None
        self._wrapper = wrapper if wrapper is not None else SoftwareRoot(self._root)
        if wrapper is not None and wrapper.kind == "pkcs11":
            self._hsm_root = wrapper

    def use_root(self, wrapper: RootWrapper | None) -> None:
        """Switch what wraps new KEKs (after a rekey here or on another node); KEK values
        never change, and KEKs wrapped by either root keep unwrapping. Sealed: raises."""
        with self._lock:
            if self._root is None:
                raise Sealed("keykeeper is sealed")
            self._set_wrapper(wrapper)

    @property
    def root_id(self) -> str | None:
        """``software``, ``pkcs11:<CKA_ID hex>``, or None while sealed."""
        wrapper = self._wrapper
        return None if self._root is None or wrapper is None else wrapper.root_id

    def on_seal(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` at every seal, while the root key is still held (the audit
        trail signs its chain head then). A listener that raises is logged and ignored."""
        self._seal_listeners.append(listener)

    def seal(self) -> None:
        """Drop the root key, every KEK and every cached handle from memory (after the
        :meth:`on_seal` listeners ran, if it was unsealed)."""
        if self._root is not None:
            for listener in self._seal_listeners:
                try:
                    listener()
                except Exception:
                    log.exception("seal listener failed")
        with self._lock:
            if self._root is not None:
                for i in range(len(self._root)):
                    self._root[i] = 0
            self._root = None
            self._wrapper = self._hsm_root = None
            self._keks.clear()
            self.handles.clear()

    def _root_key(self) -> bytes:
        root = self._root
        if root is None:
            raise Sealed("keykeeper is sealed")
        return bytes(root)

    def derive(self, info: bytes, length: int = 32) -> bytes:
        """A subkey of the root key: HKDF-SHA256 (RFC 5869) with no salt and ``info`` naming
        its use (e.g. ``b"keykeeper/audit/hmac/v1"``); ``length`` bytes (at most 8160).
        Raises Sealed while sealed. The same root key and ``info`` always give the same key,
        on every node and after every unseal."""
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                    info=info).derive(self._root_key())

    # -- namespace KEKs ---------------------------------------------------------------------
    def new_wrapped_kek(self, namespace: str) -> bytes:
        """A fresh namespace KEK, returned wrapped by the root (software or HSM)."""
        return self._current_wrapper().wrap(os.urandom(32), _kek_aad(namespace))

    def _current_wrapper(self) -> RootWrapper:
        wrapper = self._wrapper
        if self._root is None or wrapper is None:
            raise Sealed("keykeeper is sealed")
        return wrapper

    def unwrap_kek(self, namespace: str, wrapped_kek: bytes) -> bytes:
        """The KEK of ``namespace`` from its wrapped form, by the root that wrapped it (an
        HSM blob in the HSM, else under the root secret). Raises Sealed, Internal when it
        does not unwrap, Unavailable when the HSM fails."""
        if is_hsm_blob(wrapped_kek):
            hsm = self._hsm_root
            if hsm is None:
                raise Internal("a namespace key-encryption key is wrapped by an HSM root key "
                               "this node does not use")
            return hsm.unwrap(wrapped_kek, _kek_aad(namespace))
        try:
            return aead_open(self._root_key(), wrapped_kek, _kek_aad(namespace))
        except DecryptionFailed:
            raise Internal("namespace key-encryption key failed to unwrap") from None

    def _kek(self, namespace: str, wrapped_kek: bytes) -> bytes:
        kek = self._keks.get(namespace)
        if kek is None:
            kek = self.unwrap_kek(namespace, wrapped_kek)
            with self._lock:
                if self._root is None:
                    raise Sealed("keykeeper is sealed")
                self._keks[namespace] = kek
        return kek

    def forget_namespace(self, namespace: str) -> None:
        with self._lock:
            self._keks.pop(namespace, None)

    # -- key-version material ---------------------------------------------------------------
    def wrap_material(self, namespace: str, wrapped_kek: bytes, key_id: str, version: int,
                      algorithm: str, material: bytes) -> bytes:
        kek = self._kek(namespace, wrapped_kek)
        return aead_seal(kek, material, _material_aad(namespace, key_id, version, algorithm))

    def handle(self, key_id: str, version: int,
               load: Callable[[], WrappedVersion]) -> KeyHandle:
        """The loaded key handle of one version: from the cache, or ``load()`` and unwrap.

        ``load`` is called only on a cache miss, so a hot key costs no storage read.
        """
        if self._root is None:
            raise Sealed("keykeeper is sealed")
        cached = self.handles.get((key_id, version))
        if cached is not None:
            return cached
        w = load()
        if w.hsm_key_id is not None:  # generated in the PKCS#11 token: no material here
            in_token = self._hsm_handle(w)
            with self._lock:
                if self._root is None:
                    raise Sealed("keykeeper is sealed")
                self.handles.put((key_id, version), in_token)
            return in_token
        kek = self._kek(w.namespace, w.wrapped_kek)
        try:
            material = aead_open(kek, w.wrapped_material,
                                 _material_aad(w.namespace, key_id, version, w.algorithm))
        except DecryptionFailed:
            raise Internal("key material failed to unwrap") from None
        handle = load_private(get_spec(w.algorithm), material)
        with self._lock:  # never cache after a seal that ran while we unwrapped
            if self._root is None:
                raise Sealed("keykeeper is sealed")
            self.handles.put((key_id, version), handle)
        return handle

    def _hsm_handle(self, w: WrappedVersion) -> KeyHandle:
        """The handle of an HSM-protected version; FailedPrecondition when no HSM is
        configured (never a software fall-back)."""
        assert w.hsm_key_id is not None
        if self.hsm is None:
            raise FailedPrecondition("this key version is HSM-protected and no HSM is "
                                     "configured (KEYKEEPER_PKCS11_TOKEN_LABEL or _SERIAL)")
        return hsm_handle(self.hsm, get_spec(w.algorithm), w.hsm_key_id, w.public_key_pem)

    def drop_key(self, key_id: str) -> None:
        """Forget every cached handle of ``key_id`` (on any state change of the key)."""
        self.handles.drop_where(lambda k: k[0] == key_id)

    def unwrap_material(self, w: WrappedVersion, key_id: str, version: int) -> bytes:
        """The raw material of one version, for a backup that re-wraps it at once under
        its own key (service/backup_export.py); never cached, never logged. Raises Sealed,
        Internal when it does not unwrap."""
        kek = self._kek(w.namespace, w.wrapped_kek)
        try:
            return aead_open(kek, w.wrapped_material,
                             _material_aad(w.namespace, key_id, version, w.algorithm))
        except DecryptionFailed:
            raise Internal("key material failed to unwrap") from None
