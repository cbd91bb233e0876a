"""Secret-key handles: AEAD (AES-GCM, ChaCha20-Poly1305) and HMAC.

Material is the raw key: AES-128-GCM 16 bytes, AES-256-GCM 32, ChaCha20-Poly1305 32
(RFC 8439 §2.8), HMAC-SHA256/384/512 32/48/64 bytes, i.e. the hash output size
(NIST SP 800-107 Rev 1 §5.3.4: a key of at least the security strength; keykeeper fixes
it to the output size so that every imported key meets that).
"""

from __future__ import annotations

import hmac as _hmac
import os
from collections.abc import Sequence
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _pyca_hmac

from keykeeper.crypto import aead
from keykeeper.crypto.base import KeyHandle, require_bytes
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.errors import InvalidArgument

__all__ = ["AeadKeyHandle", "HmacKeyHandle", "hash_algorithm", "symmetric_key_size"]

_HASHES: Final[dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


def hash_algorithm(spec: AlgorithmSpec) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """The pyca hash object named by ``spec.hash_name`` (SHA256, SHA384 or SHA512)."""
    if spec.hash_name is None or spec.hash_name not in _HASHES:
        raise InvalidArgument(f"algorithm {spec.name} has no hash function")
    return _HASHES[spec.hash_name]()


def symmetric_key_size(spec: AlgorithmSpec) -> int:
    """Key length in bytes of a symmetric spec (``key_bits // 8``)."""
    return spec.key_bits // 8


def _check_material(spec: AlgorithmSpec, material: object) -> bytes:
    key = require_bytes("key material", material)
    if len(key) != symmetric_key_size(spec):
        raise InvalidArgument(
            f"key material for {spec.name} must be {symmetric_key_size(spec)} bytes"
        )
    return key


class AeadKeyHandle(KeyHandle):
    """AES-GCM (NIST SP 800-38D) or ChaCha20-Poly1305 (RFC 8439) secret key.

    ``encrypt(plaintext, aad)`` returns ``nonce(12) || ciphertext || tag(16)``, the nonce
    drawn from the OS CSPRNG here and nowhere else; ``decrypt`` raises DecryptionFailed
    for any failure.
    """

    __slots__ = ("_key", "_primitive")

    def __init__(self, spec: AlgorithmSpec, material: bytes) -> None:
        super().__init__(spec)
        self._key = _check_material(spec, material)
        cipher: aead.Cipher = "aes_gcm" if spec.family == "aes_gcm" else "chacha20_poly1305"
        # Built once per loaded key: the handle is cached, so this is off the hot path.
        self._primitive = aead._primitive(cipher, self._key)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Seal ``plaintext`` with ``aad``; returns ``nonce(12) || ct || tag(16)``.

        Raises InvalidArgument for non-bytes arguments or an oversize plaintext.
        """
        return aead.seal_with(self._primitive, os.urandom(aead.NONCE_SIZE), plaintext, aad)

    def encrypt_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """Seal each ``(plaintext, aad)``; the nonces of the whole batch come from one
        ``os.urandom`` call (the same CSPRNG, one system call instead of one per item).
        Raises InvalidArgument for non-bytes arguments or an oversize plaintext."""
        for plaintext, aad in items:
            if not isinstance(plaintext, bytes) or not isinstance(aad, bytes):
                raise InvalidArgument("plaintext and aad must be bytes")
        n = aead.NONCE_SIZE
        nonces = os.urandom(n * len(items))
        seal = self._primitive.encrypt
        try:
            return [nonces[i * n:(i + 1) * n] + seal(nonces[i * n:(i + 1) * n], plaintext, aad)
                    for i, (plaintext, aad) in enumerate(items)]
        except OverflowError as exc:
            raise InvalidArgument("plaintext or aad is too long") from exc

    def _encrypt_with_nonce(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        # Known-answer tests only: production code never chooses a nonce.
        return aead.seal_with(self._primitive, nonce, plaintext, aad)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        """Open ``nonce || ct || tag``; any failure raises DecryptionFailed."""
        return aead.open_with(self._primitive, blob, aad)


class HmacKeyHandle(KeyHandle):
    """HMAC key (FIPS 198-1) with SHA-256, SHA-384 or SHA-512; tags are full length."""

    __slots__ = ("_key",)

    def __init__(self, spec: AlgorithmSpec, material: bytes) -> None:
        super().__init__(spec)
        self._key = _check_material(spec, material)

    def mac(self, message: bytes) -> bytes:
        """Full-length HMAC tag of ``message`` (32/48/64 bytes)."""
        h = _pyca_hmac.HMAC(self._key, hash_algorithm(self._spec))
        h.update(require_bytes("message", message))
        return h.finalize()

    def verify_mac(self, message: bytes, tag: bytes) -> bool:
        """True if ``tag`` is the full-length tag of ``message`` (constant-time compare).

        A truncated or otherwise wrong-length tag is False: keykeeper never accepts
        truncated tags (NIST SP 800-107 Rev 1 §5.3.3 allows them only by agreement).
        """
        expected = self.mac(message)
        candidate = require_bytes("tag", tag)
        return _hmac.compare_digest(expected, candidate)
