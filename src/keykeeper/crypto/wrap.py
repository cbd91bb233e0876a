"""Key wrapping: AES key wrap with padding and RSA-AES key wrap, for import and export.

Two mechanisms, both from pyca/cryptography primitives:

* **AES-KWP** -- AES key wrap with padding (RFC 5649, NIST SP 800-38F §6.3 KWP):
  ``aes_key_wrap_with_padding(kek, material)``; the output is 8 bytes longer than the
  material rounded up to 8 bytes. Any byte string of 1 byte or more wraps exactly (leading
  zeros included).
* **RSA-AES key wrap** -- PKCS#11 ``CKM_RSA_AES_KEY_WRAP`` (PKCS#11 v2.40 §2.1.21), as AWS
  KMS (``RSA_AES_KEY_WRAP_SHA_256``) and Google Cloud KMS (``RSA_OAEP_*_SHA256_AES_256``)
  import: a fresh 32-byte AES key, encrypted with RSAES-OAEP (SHA-256, MGF1-SHA-256, empty
  label; RFC 8017 §7.1), followed by the material under that AES key with AES-KWP. The
  first ``k`` bytes (``k`` = modulus size in bytes) are the RSA ciphertext.
* **RSA-OAEP** alone (``RSA_OAEP_SHA256``) for material that fits one OAEP block:
  at most ``k - 66`` bytes (446 for RSA-4096), i.e. symmetric keys.

Wrap-purpose keys (registry rows ``AES_256_KWP``, ``RSA_OAEP_3072_SHA256_KWP``,
``RSA_OAEP_4096_SHA256_KWP``) get handles here with ``wrap`` / ``unwrap``; they serve key
export and import only, never data. Every unwrap failure is one uniform
:class:`~keykeeper.errors.InvalidArgument` (:data:`UNWRAP_FAILED`): no padding or
integrity oracle.
"""

from __future__ import annotations

import hashlib
import os
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from keykeeper.crypto.base import KeyHandle, PublicKeyHandle, require_bytes
from keykeeper.crypto.keyio import private_der, public_pem, wrong_key_type
from keykeeper.crypto.rsa import check_rsa_public_numbers
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.errors import DecryptionFailed, InvalidArgument

__all__ = [
    "AES_KEY_WRAP_PAD",
    "EXPORT_WRAPPING_ALGORITHMS",
    "IMPORT_WRAPPING_ALGORITHMS",
    "MIN_WRAPPING_RSA_BITS",
    "RSA_AES_KEY_WRAP_SHA256",
    "RSA_OAEP_SHA256",
    "UNWRAP_FAILED",
    "AesKwpKeyHandle",
    "RsaWrapKeyHandle",
    "RsaWrapPublicKeyHandle",
    "exportable_material",
    "generate_wrapping_rsa",
    "load_wrapping_public_key",
    "oaep_limit",
    "pem_fingerprint",
    "rsa_aes_unwrap",
    "rsa_aes_wrap",
    "rsa_oaep_unwrap",
    "rsa_oaep_wrap",
    "rsa_wrap_private_handle",
    "rsa_wrap_public_handle",
    "spki_fingerprint",
]

RSA_OAEP_SHA256: Final = "RSA_OAEP_SHA256"
RSA_AES_KEY_WRAP_SHA256: Final = "RSA_AES_KEY_WRAP_SHA256"
AES_KEY_WRAP_PAD: Final = "AES_KEY_WRAP_PAD"
IMPORT_WRAPPING_ALGORITHMS: Final = (RSA_AES_KEY_WRAP_SHA256, RSA_OAEP_SHA256)
EXPORT_WRAPPING_ALGORITHMS: Final = (RSA_AES_KEY_WRAP_SHA256, RSA_OAEP_SHA256, AES_KEY_WRAP_PAD)
MIN_WRAPPING_RSA_BITS: Final = 3072
EPHEMERAL_KEY_SIZE: Final = 32
UNWRAP_FAILED: Final = ("wrapped_key_material could not be unwrapped with this wrapping key "
                        "and wrapping algorithm")
_OAEP_OVERHEAD = 2 * 32 + 2  # RFC 8017 §7.1.1 with SHA-256


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                        label=None)


def oaep_limit(key: rsa.RSAPublicKey) -> int:
    """Bytes one RSAES-OAEP-SHA256 block holds: ``k - 66`` (446 for RSA-4096)."""
    return (key.key_size + 7) // 8 - _OAEP_OVERHEAD


def _material(material: object) -> bytes:
    data = require_bytes("key material", material)
    if not data:
        raise InvalidArgument("key material to wrap must not be empty")
    return data


def kwp_wrap(kek: bytes, material: bytes) -> bytes:
    """AES-KWP (RFC 5649) of ``material`` (1 byte or more) under ``kek`` (16/24/32 bytes)."""
    return aes_key_wrap_with_padding(kek, _material(material))


def kwp_unwrap(kek: bytes, wrapped: bytes) -> bytes:
    """Inverse of :func:`kwp_wrap`; InvalidArgument(:data:`UNWRAP_FAILED`) on any failure."""
    try:
        return aes_key_unwrap_with_padding(kek, require_bytes("wrapped key", wrapped))
    except (InvalidUnwrap, ValueError, TypeError):
        raise InvalidArgument(UNWRAP_FAILED) from None


def rsa_oaep_wrap(public: rsa.RSAPublicKey, material: bytes) -> bytes:
    """RSAES-OAEP-SHA256 (empty label) of ``material``; InvalidArgument if it exceeds
    :func:`oaep_limit` (use :func:`rsa_aes_wrap` then)."""
    data = _material(material)
    if len(data) > oaep_limit(public):
        raise InvalidArgument(
            f"the key material is {len(data)} bytes; RSA_OAEP_SHA256 with a "
            f"{public.key_size}-bit key wraps at most {oaep_limit(public)} bytes: use "
            f"{RSA_AES_KEY_WRAP_SHA256}")
    return public.encrypt(data, _oaep())


def rsa_aes_wrap(public: rsa.RSAPublicKey, material: bytes) -> bytes:
    """CKM_RSA_AES_KEY_WRAP: ``OAEP(ephemeral AES-256 key) || KWP(ephemeral, material)``."""
    data = _material(material)
    ephemeral = os.urandom(EPHEMERAL_KEY_SIZE)
    return public.encrypt(ephemeral, _oaep()) + aes_key_wrap_with_padding(ephemeral, data)


def _rsa_decrypt(decrypt: object, blob: bytes) -> bytes:
    assert callable(decrypt)
    try:
        out = decrypt(blob)
    except (DecryptionFailed, InvalidArgument, ValueError, TypeError):
        raise InvalidArgument(UNWRAP_FAILED) from None
    assert isinstance(out, bytes)
    return out


def rsa_oaep_unwrap(private: rsa.RSAPrivateKey | KeyHandle, wrapped: bytes) -> bytes:
    """Inverse of :func:`rsa_oaep_wrap`, with a pyca private key or an RSA-OAEP
    :class:`KeyHandle` (whose ``decrypt(blob, b"")`` is OAEP-SHA256, empty label)."""
    blob = require_bytes("wrapped key", wrapped)
    if isinstance(private, KeyHandle):
        return _rsa_decrypt(lambda b: private.decrypt(b, b""), blob)
    return _rsa_decrypt(lambda b: private.decrypt(b, _oaep()), blob)


def rsa_aes_unwrap(private: rsa.RSAPrivateKey | KeyHandle, modulus_bytes: int,
                   wrapped: bytes) -> bytes:
    """Inverse of :func:`rsa_aes_wrap`. ``modulus_bytes``: the RSA key's size in bytes
    (512 for RSA-4096). InvalidArgument(:data:`UNWRAP_FAILED`) on any failure."""
    blob = require_bytes("wrapped key", wrapped)
    if len(blob) < modulus_bytes + 16:
        raise InvalidArgument(UNWRAP_FAILED)
    ephemeral = rsa_oaep_unwrap(private, blob[:modulus_bytes])
    if len(ephemeral) not in (16, 24, 32):
        raise InvalidArgument(UNWRAP_FAILED)
    return kwp_unwrap(ephemeral, blob[modulus_bytes:])


def generate_wrapping_rsa(bits: int = 4096) -> bytes:
    """A fresh RSA key (e = 65537) for an import token, as PKCS#8 DER (about a second)."""
    return private_der(rsa.generate_private_key(65537, bits))


def spki_fingerprint(public: PublicKeyTypes) -> str:
    """Lower-case hex SHA-256 of the key's SubjectPublicKeyInfo DER."""
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def pem_fingerprint(pem: str) -> str:
    """:func:`spki_fingerprint` of a SubjectPublicKeyInfo PEM (InvalidArgument if not one)."""
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeError):
        raise InvalidArgument("not a SubjectPublicKeyInfo PEM public key") from None
    return spki_fingerprint(key)


def load_wrapping_public_key(data: bytes | str) -> rsa.RSAPublicKey:
    """A caller's wrapping key: an RSA SubjectPublicKeyInfo (PEM or DER) of at least
    3072 bits (NIST SP 800-57 Part 1 Rev 5 §5.6.1.1: 128-bit strength) with
    2**16 < e < 2**256. InvalidArgument otherwise."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else require_bytes(
        "wrapping_public_key", data)
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            pem = raw.strip()
            if pem.count(b"-----BEGIN") != 1 or not pem.endswith(b"-----"):
                raise ValueError("not one PEM block alone")  # e.g. junk after END
            key = serialization.load_pem_public_key(pem)
        else:
            key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidArgument("wrapping_public_key is not a SubjectPublicKeyInfo public key "
                              "(PEM 'PUBLIC KEY' or DER)") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidArgument("wrapping_public_key must be an RSA public key")
    if key.key_size < MIN_WRAPPING_RSA_BITS:
        raise InvalidArgument(
            f"wrapping_public_key is RSA-{key.key_size}; at least RSA-{MIN_WRAPPING_RSA_BITS} "
            "is required (NIST SP 800-57 Part 1 Rev 5 §5.6.1.1, Table 2)")
    e = key.public_numbers().e
    if not (2**16 < e < 2**256 and e % 2 == 1):
        raise InvalidArgument("wrapping_public_key has a public exponent outside "
                              "2**16 < e < 2**256 (FIPS 186-5 §A.1.1)")
    return key


def exportable_material(handle: KeyHandle) -> tuple[bytes, str]:
    """The material of a loaded software key, for wrapping only: ``(raw key, "raw")``
    for secret keys, ``(PKCS#8 DER, "pkcs8")`` for private keys. The one place key
    material leaves a handle; the caller wraps it at once (service/key_export.py).
    FailedPrecondition for a handle without private material."""
    inner = getattr(handle, "_key", None)
    if isinstance(inner, bytes):
        return inner, "raw"
    if inner is not None and hasattr(inner, "private_bytes"):
        key: PrivateKeyTypes = inner
        return private_der(key), "pkcs8"
    handle._unsupported("export")


class AesKwpKeyHandle(KeyHandle):
    """``AES_256_KWP``: wraps and unwraps key material with AES-KWP (RFC 5649)."""

    __slots__ = ("_key",)

    def __init__(self, spec: AlgorithmSpec, material: bytes) -> None:
        super().__init__(spec)
        key = require_bytes("key material", material)
        if len(key) != spec.key_bits // 8:
            raise InvalidArgument(f"key material for {spec.name} must be "
                                  f"{spec.key_bits // 8} bytes")
        self._key = key

    def wrap(self, material: bytes) -> bytes:
        return kwp_wrap(self._key, material)

    def unwrap(self, wrapped: bytes) -> bytes:
        return kwp_unwrap(self._key, wrapped)


class RsaWrapPublicKeyHandle(PublicKeyHandle):
    """Public half of an ``RSA_OAEP_*_SHA256_KWP`` key: ``wrap`` (RSA-AES key wrap)."""

    __slots__ = ("_key",)

    def __init__(self, spec: AlgorithmSpec, key: rsa.RSAPublicKey) -> None:
        super().__init__(spec)
        self._key = key

    def public_key_pem(self) -> str:
        return public_pem(self._key)

    def wrap(self, material: bytes) -> bytes:
        return rsa_aes_wrap(self._key, material)


class RsaWrapKeyHandle(KeyHandle):
    """``RSA_OAEP_3072_SHA256_KWP`` / ``RSA_OAEP_4096_SHA256_KWP``: RSA-AES key wrap
    (CKM_RSA_AES_KEY_WRAP, OAEP-SHA256) with the public key, unwrap with the private key."""

    __slots__ = ("_key", "_public")

    def __init__(self, spec: AlgorithmSpec, key: rsa.RSAPrivateKey) -> None:
        super().__init__(spec)
        self._key = key
        self._public = key.public_key()

    def public_key_pem(self) -> str:
        return public_pem(self._public)

    def wrap(self, material: bytes) -> bytes:
        return rsa_aes_wrap(self._public, material)

    def unwrap(self, wrapped: bytes) -> bytes:
        return rsa_aes_unwrap(self._key, (self._key.key_size + 7) // 8, wrapped)


def rsa_wrap_private_handle(spec: AlgorithmSpec, key: PrivateKeyTypes) -> RsaWrapKeyHandle:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise wrong_key_type(spec, "not an RSA private key")
    check_rsa_public_numbers(spec, key.public_key())
    return RsaWrapKeyHandle(spec, key)


def rsa_wrap_public_handle(spec: AlgorithmSpec, key: PublicKeyTypes) -> RsaWrapPublicKeyHandle:
    if not isinstance(key, rsa.RSAPublicKey):
        raise wrong_key_type(spec, "not an RSA public key")
    check_rsa_public_numbers(spec, key)
    return RsaWrapPublicKeyHandle(spec, key)
