"""Parsing and serialising asymmetric keys: PKCS#8 DER private keys, SPKI DER/PEM public keys.

Every parsing failure becomes :class:`~keykeeper.errors.InvalidArgument` with a message
that names the algorithm and never echoes the bytes.
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from keykeeper.crypto.base import require_bytes
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.errors import InvalidArgument

__all__ = [
    "load_private_der",
    "load_public_der_or_pem",
    "private_der",
    "public_pem",
    "wrong_key_type",
]

_PEM_PREFIX = b"-----BEGIN"


def load_private_der(spec: AlgorithmSpec, material: object) -> PrivateKeyTypes:
    """Parse PKCS#8 DER ``material`` (RSA also as PKCS#1 DER); InvalidArgument if malformed.

    RSA keys are fully validated by OpenSSL on load (primes, CRT values).
    """
    data = require_bytes("key material", material)
    try:
        return serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidArgument(
            f"key material is not a valid PKCS#8 DER private key for {spec.name}"
        ) from None


def load_public_der_or_pem(spec: AlgorithmSpec, public_key: object) -> PublicKeyTypes:
    """Parse a SubjectPublicKeyInfo in DER or PEM; InvalidArgument if malformed."""
    data = require_bytes("public key", public_key)
    try:
        if data.lstrip().startswith(_PEM_PREFIX):
            return serialization.load_pem_public_key(data)
        return serialization.load_der_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidArgument(
            f"public key is not a valid SubjectPublicKeyInfo (DER or PEM) for {spec.name}"
        ) from None


def private_der(key: PrivateKeyTypes) -> bytes:
    """PKCS#8 DER of an unencrypted private key (seed form for ML-DSA / ML-KEM)."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: PublicKeyTypes) -> str:
    """SubjectPublicKeyInfo PEM of a public key, as text."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def wrong_key_type(spec: AlgorithmSpec, what: str) -> InvalidArgument:
    """The InvalidArgument for a key of the wrong type, curve or size (``what`` says which)."""
    return InvalidArgument(f"key does not match algorithm {spec.name}: {what}")
