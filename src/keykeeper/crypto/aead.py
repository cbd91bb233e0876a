"""AEAD sealing in keykeeper's one blob format: ``nonce(12) || ciphertext || tag(16)``.

Pure functions over pyca/cryptography's AESGCM (NIST SP 800-38D) and ChaCha20Poly1305
(RFC 8439). The nonce is always 96 bits from the OS CSPRNG (SP 800-38D §8.2.2, the
random construction), so one key must not seal more than 2**32 messages (§8.3).
:func:`aead_seal` / :func:`aead_open` (AES-GCM) are also what custody/ uses to wrap key
material. Every opening failure raises the one uniform
:class:`~keykeeper.errors.DecryptionFailed`.
"""

from __future__ import annotations

import os
from typing import Final, Literal

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from keykeeper.errors import DecryptionFailed, InvalidArgument

__all__ = [
    "AES_KEY_SIZES",
    "CHACHA_KEY_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "aead_open",
    "aead_seal",
]

NONCE_SIZE: Final = 12
"""Bytes of nonce at the front of every blob."""
TAG_SIZE: Final = 16
"""Bytes of authentication tag at the end of every blob."""
AES_KEY_SIZES: Final = (16, 24, 32)
"""AES key sizes in bytes that keykeeper accepts (AES-192 is not offered)."""
CHACHA_KEY_SIZE: Final = 32

Cipher = Literal["aes_gcm", "chacha20_poly1305"]


def _primitive(cipher: Cipher, key: bytes) -> AESGCM | ChaCha20Poly1305:
    if not isinstance(key, bytes | bytearray):
        raise InvalidArgument("key must be bytes")
    if cipher == "aes_gcm":
        if len(key) not in AES_KEY_SIZES:
            raise InvalidArgument("AES-GCM key must be 16, 24 or 32 bytes")
        return AESGCM(bytes(key))
    if len(key) != CHACHA_KEY_SIZE:
        raise InvalidArgument("ChaCha20-Poly1305 key must be 32 bytes")
    return ChaCha20Poly1305(bytes(key))


def _check_bytes(name: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidArgument(f"{name} must be bytes")
    return bytes(value)


Primitive = AESGCM | ChaCha20Poly1305


def seal_with(primitive: Primitive, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Seal with a prepared ``primitive`` and a 12-byte ``nonce``; returns ``nonce || ct || tag``.

    Raises InvalidArgument for a wrong nonce size, non-bytes arguments, or a plaintext
    beyond the primitive's limit (2**31 - 1 bytes in pyca/cryptography).
    """
    if len(nonce) != NONCE_SIZE:
        raise InvalidArgument("nonce must be 12 bytes")
    data = _check_bytes("plaintext", plaintext)
    associated = _check_bytes("aad", aad)
    try:
        sealed = primitive.encrypt(nonce, data, associated)
    except OverflowError as exc:
        raise InvalidArgument("plaintext or aad is too long") from exc
    return nonce + sealed


def open_with(primitive: Primitive, blob: bytes, aad: bytes) -> bytes:
    """Open ``nonce || ct || tag`` with a prepared ``primitive``; any failure raises
    DecryptionFailed."""
    try:
        data = _check_bytes("blob", blob)
        associated = _check_bytes("aad", aad)
        if len(data) < NONCE_SIZE + TAG_SIZE:
            raise DecryptionFailed()
        return primitive.decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], associated)
    except Exception:
        # Uniform on purpose: no detail, no chained cause (no oracle).
        raise DecryptionFailed() from None


def _seal_with_nonce(
    key: bytes, nonce: bytes, plaintext: bytes, aad: bytes, cipher: Cipher = "aes_gcm"
) -> bytes:
    """Seal with an explicit 12-byte ``nonce`` (known-answer tests only)."""
    return seal_with(_primitive(cipher, key), nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes, cipher: Cipher = "aes_gcm") -> bytes:
    """Open ``nonce || ct || tag``; any failure raises DecryptionFailed."""
    try:
        primitive = _primitive(cipher, key)
    except Exception:
        raise DecryptionFailed() from None
    return open_with(primitive, blob, aad)


def _seal(key: bytes, plaintext: bytes, aad: bytes, cipher: Cipher = "aes_gcm") -> bytes:
    return _seal_with_nonce(key, os.urandom(NONCE_SIZE), plaintext, aad, cipher)


def aead_seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-GCM-seal ``plaintext`` under ``key`` (16, 24 or 32 bytes) with ``aad`` authenticated.

    Returns ``nonce(12) || ciphertext(len(plaintext)) || tag(16)``; the nonce is drawn
    from ``os.urandom`` (NIST SP 800-38D §8.2.2). Raises InvalidArgument for a wrong key
    size or non-bytes arguments.
    """
    return _seal(key, plaintext, aad, "aes_gcm")


def aead_open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Open a blob made by :func:`aead_seal` with the same ``key`` and ``aad``.

    Returns the plaintext. Raises :class:`~keykeeper.errors.DecryptionFailed`, always
    with the same message, for any failure: wrong key, wrong aad, tampered or short blob,
    bad key size.
    """
    return _open(key, blob, aad, "aes_gcm")
