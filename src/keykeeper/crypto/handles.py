"""Making keys and loading them into handles: one dispatch table per family.

* :func:`generate_material` — fresh material for a spec, from the OS CSPRNG (directly for
  secret keys, through OpenSSL's DRBG, seeded by the OS, for key pairs).
* :func:`load_private` — material -> :class:`~keykeeper.crypto.base.KeyHandle`.
* :func:`load_public` — SubjectPublicKeyInfo (DER or PEM) -> :class:`PublicKeyHandle`.
* :func:`random_bytes` — caller-requested random bytes from ``os.urandom``.

Material formats (bytes):

============================  ==============================================================
family                        material
============================  ==============================================================
aes_gcm, chacha20_poly1305    raw key: 16 / 24 / 32 bytes (AES-128 / -192 / -256), 32 (ChaCha20)
hmac                          raw key, hash output size: 32 / 48 / 64 bytes
aes_kwp                       raw key: 32 bytes (AES_256_KWP, wrap purpose)
rsa_aes_kwp                   PKCS#8 DER private key (RSA_OAEP_*_SHA256_KWP, wrap purpose)
rsa_*, ecdsa, ed25519         PKCS#8 DER private key (RSA e = 65537 on generation)
ml_dsa, ml_kem                seed-only PKCS#8 DER; the raw seed (32 / 64 bytes) is also loaded
secret_data, opaque_data      the stored bytes, 1 B to 64 KiB (crypto/stored.py; never generated)
x509_certificate              one X.509 certificate's DER, 1 B to 64 KiB (crypto/stored.py)
============================  ==============================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from keykeeper.crypto import ecc, pq, rsa, wrap
from keykeeper.crypto.base import KeyHandle, PublicKeyHandle
from keykeeper.crypto.keyio import load_private_der, load_public_der_or_pem
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.crypto.stored import CertificateHandle, StoredDataHandle, refuse_generation
from keykeeper.crypto.symmetric import AeadKeyHandle, HmacKeyHandle, symmetric_key_size
from keykeeper.errors import InvalidArgument

__all__ = [
    "MAX_RANDOM_BYTES",
    "generate_material",
    "load_private",
    "load_public",
    "random_bytes",
]

MAX_RANDOM_BYTES: Final = 65536


def _random_key(spec: AlgorithmSpec) -> bytes:
    return os.urandom(symmetric_key_size(spec))


_GENERATORS: Final[Mapping[str, Callable[[AlgorithmSpec], bytes]]] = MappingProxyType(
    {
        "aes_gcm": _random_key,
        "chacha20_poly1305": _random_key,
        "hmac": _random_key,
        "rsa_oaep": rsa.generate_rsa,
        "rsa_pss": rsa.generate_rsa,
        "rsa_pkcs1": rsa.generate_rsa,
        "ecdsa": ecc.generate_ecdsa,
        "ed25519": ecc.generate_ed25519,
        "ml_dsa": pq.generate_mldsa,
        "ml_kem": pq.generate_mlkem,
        "aes_kwp": _random_key,
        "rsa_aes_kwp": rsa.generate_rsa,
        "secret_data": refuse_generation,
        "opaque_data": refuse_generation,
        "x509_certificate": refuse_generation,
    }
)

# Families whose material is raw bytes handed to the handle as is.
_RAW_LOADERS: Final[Mapping[str, Callable[[AlgorithmSpec, bytes], KeyHandle]]] = MappingProxyType(
    {
        "aes_gcm": AeadKeyHandle,
        "chacha20_poly1305": AeadKeyHandle,
        "hmac": HmacKeyHandle,
        "ml_dsa": pq.mldsa_private_handle,
        "ml_kem": pq.mlkem_private_handle,
        "aes_kwp": wrap.AesKwpKeyHandle,
        "secret_data": StoredDataHandle,
        "opaque_data": StoredDataHandle,
        "x509_certificate": CertificateHandle,
    }
)

# Families whose material is PKCS#8 DER, parsed first, then checked against the spec.
_PKCS8_LOADERS: Final[Mapping[str, Callable[[AlgorithmSpec, PrivateKeyTypes], KeyHandle]]] = (
    MappingProxyType(
        {
            "rsa_oaep": rsa.rsa_private_handle,
            "rsa_pss": rsa.rsa_private_handle,
            "rsa_pkcs1": rsa.rsa_private_handle,
            "ecdsa": ecc.ecdsa_private_handle,
            "ed25519": ecc.ed25519_private_handle,
            "rsa_aes_kwp": wrap.rsa_wrap_private_handle,
        }
    )
)

_PUBLIC_LOADERS: Final[Mapping[str, Callable[[AlgorithmSpec, PublicKeyTypes], PublicKeyHandle]]] = (
    MappingProxyType(
        {
            "rsa_oaep": rsa.rsa_public_handle,
            "rsa_pss": rsa.rsa_public_handle,
            "rsa_pkcs1": rsa.rsa_public_handle,
            "ecdsa": ecc.ecdsa_public_handle,
            "ed25519": ecc.ed25519_public_handle,
            "ml_dsa": pq.mldsa_public_handle,
            "ml_kem": pq.mlkem_public_handle,
            "rsa_aes_kwp": wrap.rsa_wrap_public_handle,
        }
    )
)


def _check_spec(spec: object) -> AlgorithmSpec:
    if not isinstance(spec, AlgorithmSpec) or spec.family not in _GENERATORS:
        raise InvalidArgument("spec must be an AlgorithmSpec from the registry")
    return spec


def generate_material(spec: AlgorithmSpec) -> bytes:
    """Fresh key material for ``spec``, in the format of this module's table.

    Symmetric: raw key bytes from ``os.urandom``. Asymmetric: PKCS#8 DER (seed-only for
    ML-DSA / ML-KEM). RSA-4096 generation takes about a second.
    """
    spec = _check_spec(spec)
    return _GENERATORS[spec.family](spec)


def load_private(spec: AlgorithmSpec, material: bytes) -> KeyHandle:
    """Load ``material`` for ``spec`` into a :class:`KeyHandle`; load once, cache the handle.

    Raises InvalidArgument if the material does not match the spec: wrong size, not
    parseable, wrong key type, wrong curve, wrong modulus size or exponent, wrong ML-*
    parameter set. The message never contains the material.
    """
    spec = _check_spec(spec)
    raw_loader = _RAW_LOADERS.get(spec.family)
    if raw_loader is not None:
        return raw_loader(spec, material)
    key = load_private_der(spec, material)
    return _PKCS8_LOADERS[spec.family](spec, key)


def load_public(spec: AlgorithmSpec, public_key: bytes) -> PublicKeyHandle:
    """Load a SubjectPublicKeyInfo (DER, or PEM text as bytes) for an asymmetric ``spec``.

    Raises InvalidArgument for a symmetric spec, an unparseable key, or a key that does
    not match the spec (type, curve, modulus size, parameter set).
    """
    spec = _check_spec(spec)
    loader = _PUBLIC_LOADERS.get(spec.family)
    if loader is None:
        raise InvalidArgument(f"algorithm {spec.name} is symmetric and has no public key")
    return loader(spec, load_public_der_or_pem(spec, public_key))


def random_bytes(length: int) -> bytes:
    """``length`` bytes from the OS CSPRNG (``os.urandom``); 1 <= length <= 65536.

    Raises InvalidArgument for a length out of range or not an integer.
    """
    if isinstance(length, bool) or not isinstance(length, int):
        raise InvalidArgument("length must be an integer")
    if not 1 <= length <= MAX_RANDOM_BYTES:
        raise InvalidArgument(f"length must be between 1 and {MAX_RANDOM_BYTES} bytes")
    return os.urandom(length)
