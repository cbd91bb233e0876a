"""The key hierarchy: root key (sealed) -> namespace KEKs -> key-version material.

* The 256-bit root key exists in memory only while unsealed.
* Each namespace has its own 256-bit key-encryption key, stored wrapped by the
  root key with AES-256-GCM; associated data ``keykeeper/kek/v1 || 0 || namespace``.
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
from keykeeper.custody.hsm.token import Token
from keykeeper.errors import DecryptionFailed, Internal, Sealed

__all__ = ["Custody", "WrappedVersion"]

log = logging.getLogger("keykeeper.custody")


@dataclass(frozen=True, slots=True)
class WrappedVersion:
    """What custody needs from the store to unwrap one key version."""

    namespace: str
    wrapped_kek: bytes
    algorithm: str
    wrapped_material: bytes


def _kek_aad(namespace: str) -> bytes:
    return b"keykeeper/kek/v1\x00" + namespace.encode()


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
        self._root: bytearray | None = None
        self._keks: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.handles: TTLCache[tuple[str, int], KeyHandle] = TTLCache(cache_entries, cache_ttl)
        self._seal_listeners: list[Callable[[], None]] = []

    # -- seal state -------------------------------------------------------------------------
    @property
    def sealed(self) -> bool:
        return self._root is None

    def unseal(self, root_key: bytes) -> None:
        if len(root_key) != 32:
            raise Internal("root key has the wrong length")
        with self._lock:
            self._root = bytearray(root_key)

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
        """A fresh namespace KEK, returned wrapped by the root key."""
        return aead_seal(self._root_key(), os.urandom(32), _kek_aad(namespace))

    def _kek(self, namespace: str, wrapped_kek: bytes) -> bytes:
        kek = self._keks.get(namespace)
        if kek is None:
            try:
                kek = aead_open(self._root_key(), wrapped_kek, _kek_aad(namespace))
            except DecryptionFailed:
                raise Internal("namespace key-encryption key failed to unwrap") from None
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

    def drop_key(self, key_id: str) -> None:
        """Forget every cached handle of ``key_id`` (on any state change of the key)."""
        self.handles.drop_where(lambda k: k[0] == key_id)
