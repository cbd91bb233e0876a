"""What wraps the namespace KEKs: a software root key, or an AES-256 key inside an HSM.

Both wrap with AES-256-GCM and the associated data ``keykeeper/kek/v1 || 0 || namespace``
(NIST SP 800-38D), so a wrapped KEK moved to another namespace fails to unwrap.

* :class:`SoftwareRoot` -- the 32-byte root secret itself wraps (passphrase and shamir
  seals). Blob: ``nonce(12) || ct(32) || tag(16)``, 60 bytes (crypto/aead.py).
* :class:`HsmRoot` -- a token object (``CKK_AES``, 256 bits, ``CKA_SENSITIVE``, not
  ``CKA_EXTRACTABLE``, ``CKA_TOKEN``) found by its random ``CKA_ID``; wrapping and
  unwrapping run in the token with ``CKM_AES_GCM`` (PKCS#11 v2.40 §2.12.3, 96-bit nonce
  drawn here, 128-bit tag). Blob: ``b"KKH1" || CKA_ID(16) || nonce(12) || ct || tag``,
  80 bytes for a KEK; the id prefix lets any node tell which root wrapped a KEK.

Every node also holds the *root secret* while unsealed (custody/keyring.py derives the
audit, receipt and page-token keys from it), so a KEK wrapped by either root stays
readable during the second a rekey takes to reach every node.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from keykeeper.crypto.aead import NONCE_SIZE, TAG_SIZE, aead_open, aead_seal
from keykeeper.custody.hsm.token import Token
from keykeeper.errors import DecryptionFailed, Internal, InvalidArgument

__all__ = ["HSM_BLOB_MAGIC", "HsmRoot", "RootWrapper", "SoftwareRoot", "generate_hsm_key",
           "is_hsm_blob", "kek_aad"]

HSM_BLOB_MAGIC = b"KKH1"
KEY_ID_SIZE = 16
HSM_KEY_LABEL = "keykeeper-root"


def kek_aad(namespace: str) -> bytes:
    """The associated data binding a wrapped KEK to its namespace."""
    return b"keykeeper/kek/v1\x00" + namespace.encode()


def is_hsm_blob(blob: bytes) -> bool:
    """True when ``blob`` was made by an :class:`HsmRoot` (magic, key id, nonce, tag)."""
    return (blob[:4] == HSM_BLOB_MAGIC
            and len(blob) >= 4 + KEY_ID_SIZE + NONCE_SIZE + TAG_SIZE
            and len(blob) != NONCE_SIZE + 32 + TAG_SIZE)


class RootWrapper(Protocol):
    """Wraps and unwraps secrets (KEKs, the root secret) under one root."""

    kind: str  # "software" | "pkcs11"

    @property
    def root_id(self) -> str:
        """Which root this is: ``software``, or ``pkcs11:<CKA_ID hex>``."""
        ...

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        """The secret; Internal (software) or Unavailable (HSM) when it fails."""
        ...


class SoftwareRoot:
    """The root secret wraps with AES-256-GCM in this process (pyca/cryptography)."""

    kind = "software"

    def __init__(self, secret: bytes | bytearray) -> None:
        if len(secret) != 32:
            raise Internal("root key has the wrong length")
        self._secret = secret

    @property
    def root_id(self) -> str:
        return "software"

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        return aead_seal(bytes(self._secret), secret, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return aead_open(bytes(self._secret), blob, aad)
        except DecryptionFailed:
            raise Internal("a wrapped key failed to unwrap under the root key") from None


def _gcm(nonce: bytes, aad: bytes) -> tuple[Any, Any]:
    from pkcs11 import GCMParams, Mechanism

    return Mechanism.AES_GCM, GCMParams(nonce, aad, TAG_SIZE * 8)


class HsmRoot:
    """An AES-256 key inside the token, found by ``CKA_ID``; every wrap and unwrap runs in
    the token. Faults raise :class:`~keykeeper.errors.Unavailable` or
    :class:`~keykeeper.errors.FailedPrecondition` (custody/hsm/token.py), never a
    fall-back to software."""

    kind = "pkcs11"

    def __init__(self, token: Token, key_id: bytes) -> None:
        if len(key_id) != KEY_ID_SIZE:
            raise InvalidArgument("the HSM root key id must be 16 bytes")
        self.token = token
        self.key_id = key_id

    @property
    def root_id(self) -> str:
        return "pkcs11:" + self.key_id.hex()

    def _key(self, session: Any) -> Any:
        from pkcs11 import ObjectClass

        return session.get_key(object_class=ObjectClass.SECRET_KEY, id=self.key_id)

    def wrap(self, secret: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_SIZE)
        mechanism, param = _gcm(nonce, aad)
        with self.token.session() as s:
            out = bytes(self._key(s).encrypt(secret, mechanism=mechanism,
                                             mechanism_param=param))
        return HSM_BLOB_MAGIC + self.key_id + nonce + out

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        if not is_hsm_blob(blob) or blob[4:4 + KEY_ID_SIZE] != self.key_id:
            raise Internal("a wrapped key names another HSM root key")
        body = blob[4 + KEY_ID_SIZE:]
        mechanism, param = _gcm(body[:NONCE_SIZE], aad)
        with self.token.session() as s:
            return bytes(self._key(s).decrypt(body[NONCE_SIZE:], mechanism=mechanism,
                                              mechanism_param=param))

    def check(self) -> None:
        """Find the key now: Unavailable when the token or the key cannot be reached."""
        with self.token.session() as s:
            self._key(s)


def generate_hsm_key(token: Token) -> HsmRoot:
    """Generate a new AES-256 root key inside ``token``: a token object, sensitive, not
    extractable, usable for encrypt/decrypt only, with a random 16-byte ``CKA_ID`` (the
    store records it). Raises Unavailable or FailedPrecondition on a token fault."""
    from pkcs11 import Attribute, KeyType

    key_id = os.urandom(KEY_ID_SIZE)
    template = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
                Attribute.ENCRYPT: True, Attribute.DECRYPT: True,
                Attribute.WRAP: False, Attribute.UNWRAP: False, Attribute.SIGN: False,
                Attribute.VERIFY: False, Attribute.DERIVE: False, Attribute.PRIVATE: True,
                Attribute.MODIFIABLE: False}
    with token.session() as s:
        s.generate_key(KeyType.AES, 256, id=key_id, label=HSM_KEY_LABEL, store=True,
                       template=template)
    return HsmRoot(token, key_id)
