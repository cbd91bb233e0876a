"""Parsing and serialising asymmetric keys: PKCS#8 DER private keys, SPKI DER/PEM public keys.

Every parsing failure becomes :class:`~keykeeper.errors.InvalidArgument` with a message
that names the algorithm and never echoes the bytes.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from keykeeper.crypto.base import require_bytes
from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.crypto.stored import check_certificate
from keykeeper.errors import InvalidArgument

__all__ = [
    "IMPORT_FORMATS",
    "check_import_format",
    "der_structure",
    "import_private_material",
    "import_public_key",
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


# -- import formats (issue 6 §3; service/key_import.py) --------------------------------------

IMPORT_FORMATS: tuple[str, ...] = ("raw", "pkcs8", "pkcs1", "sec1", "spki")
"""``raw`` (symmetric keys; Ed25519's 32-byte private key; ML-DSA / ML-KEM seeds),
``pkcs8`` (RFC 5208 / 5958 PrivateKeyInfo), ``pkcs1`` (RFC 8017 A.1.2 RSAPrivateKey),
``sec1`` (SEC 1 v2 §C.4 ECPrivateKey), ``spki`` (RFC 5280 SubjectPublicKeyInfo: a public
key alone). The DER forms may also come as PEM (RFC 7468)."""

_STRUCTURES = {
    "pkcs8": ("PKCS#8 PrivateKeyInfo", "PRIVATE KEY"),
    "pkcs1": ("PKCS#1 RSAPrivateKey", "RSA PRIVATE KEY"),
    "sec1": ("SEC 1 ECPrivateKey", "EC PRIVATE KEY"),
    "spki": ("SubjectPublicKeyInfo", "PUBLIC KEY"),
    "pkcs1-public": ("PKCS#1 RSAPublicKey", "RSA PUBLIC KEY"),
}
_LABELS = {label: name for name, (_, label) in _STRUCTURES.items()}
_FORMATS_BY_FAMILY: dict[str, tuple[str, ...]] = {
    "aes_gcm": ("raw",), "chacha20_poly1305": ("raw",), "hmac": ("raw",),
    "aes_kwp": ("raw",),
    "rsa_oaep": ("pkcs8", "pkcs1", "spki"), "rsa_pss": ("pkcs8", "pkcs1", "spki"),
    "rsa_pkcs1": ("pkcs8", "pkcs1", "spki"), "rsa_aes_kwp": ("pkcs8", "pkcs1", "spki"),
    "ecdsa": ("pkcs8", "sec1", "spki"),
    "ed25519": ("raw", "pkcs8", "spki"),
    "ml_dsa": ("raw", "pkcs8", "spki"), "ml_kem": ("raw", "pkcs8", "spki"),
    "secret_data": ("raw",), "opaque_data": ("raw",), "x509_certificate": ("raw",),
}


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at ``pos``; ValueError."""
    if pos + 2 > len(data):
        raise ValueError
    tag, length, pos = data[pos], data[pos + 1], pos + 2
    if length & 0x80:
        n = length & 0x7F
        if not 1 <= n <= 4 or pos + n > len(data):
            raise ValueError
        length, pos = int.from_bytes(data[pos:pos + n], "big"), pos + n
    if pos + length > len(data):
        raise ValueError
    return tag, pos, pos + length


def der_structure(data: bytes) -> str | None:
    """Which key structure a DER blob is, from its outer shape only (pyca parses it
    afterwards): ``pkcs8``, ``pkcs1``, ``sec1``, ``spki``, ``pkcs1-public`` or None."""
    try:
        tag, start, end = _tlv(data, 0)
        if tag != 0x30 or end != len(data):
            return None
        t1, s1, e1 = _tlv(data, start)
        t2, _, e2 = _tlv(data, e1)
        if t1 == 0x30:
            return "spki" if t2 == 0x03 else None
        if t1 != 0x02:
            return None
        version = int.from_bytes(data[s1:e1], "big") if e1 - s1 <= 2 else None
        if t2 == 0x30 and version in (0, 1):
            return "pkcs8"
        if t2 == 0x04 and version == 1:
            return "sec1"
        if t2 == 0x02:
            return "pkcs1-public" if e2 == end else ("pkcs1" if version in (0, 1) else None)
    except ValueError:
        return None
    return None


_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,64})-----\r?\n(.*?)-----END \1-----",
                  re.DOTALL)


def _from_pem(data: bytes) -> tuple[str, bytes]:
    """(label, DER) of a single PEM block; InvalidArgument if malformed or encrypted."""
    found = _PEM.search(data)
    if (found is None or data.count(b"-----BEGIN") != 1
            or data[:found.start()].strip() or data[found.end():].strip()):
        raise InvalidArgument("key material is not a single well-formed PEM block")
    label = found.group(1).decode("ascii")
    body = found.group(2)
    if label == "ENCRYPTED PRIVATE KEY" or b"Proc-Type:" in body:
        raise InvalidArgument("encrypted PEM is not accepted: send the key unencrypted, "
                              "protected by the import wrapping instead")
    try:
        der = base64.b64decode(b"".join(body.split()), validate=True)
    except (ValueError, binascii.Error):
        raise InvalidArgument(f"PEM block '{label}' does not hold valid base64") from None
    return label, der


def _checked_structure(spec: AlgorithmSpec, fmt: str, data: bytes) -> bytes:
    """The DER of ``data`` (DER or PEM) after checking that the PEM label, the content
    and ``fmt`` all name the same structure."""
    der = data
    label: str | None = None
    if data.lstrip().startswith(_PEM_PREFIX):
        label, der = _from_pem(data)
    found = der_structure(der)
    if label is not None:
        labelled = _LABELS.get(label)
        if labelled is None:
            raise InvalidArgument(f"PEM label '{label}' is not a key label keykeeper imports")
        if found is not None and labelled != found:
            name, right = _STRUCTURES[found]
            raise InvalidArgument(f"PEM label '{label}' does not match its contents, a {name} "
                                  f"(label '{right}')")
    if found is None:
        raise InvalidArgument(f"key material is not a valid {_STRUCTURES[fmt][0]} for "
                              f"{spec.name}")
    if found != fmt:
        raise InvalidArgument(f"format '{fmt}' does not match the key material, a "
                              f"{_STRUCTURES[found][0]}")
    return der


def check_import_format(spec: AlgorithmSpec, fmt: object) -> str:
    """``fmt`` if keys of ``spec`` can be imported in it; InvalidArgument naming the
    formats they can."""
    allowed = _FORMATS_BY_FAMILY.get(spec.family, ())
    if not isinstance(fmt, str) or fmt not in allowed:
        shown = fmt[:32] if isinstance(fmt, str) else type(fmt).__name__
        raise InvalidArgument(f"format '{shown}' is not accepted for {spec.name}; one of "
                              + ", ".join(allowed))
    return fmt


def import_private_material(spec: AlgorithmSpec, fmt: str, data: bytes) -> bytes:
    """Material in keykeeper's stored form (crypto/handles.py table) from what a client
    imported: the raw bytes as they are for ``raw`` secret keys and ML seeds (leading zeros
    kept), PKCS#8 DER for every private key (PKCS#1, SEC 1, raw Ed25519 converted). Does
    not check the key against ``spec`` (``load_private`` does), but an X.509 certificate,
    which is parsed in full here (crypto/stored.py ``check_certificate``: loading checks
    its integrity only). InvalidArgument for a
    format the family does not take, a mismatched PEM label or format, or bad bytes;
    messages never hold the material."""
    check_import_format(spec, fmt)
    if fmt == "spki":
        raise InvalidArgument("format 'spki' imports a public key alone")
    if fmt == "raw":
        if spec.family == "x509_certificate":   # parsed in full here, not when loaded
            return check_certificate(spec, data)
        if spec.family == "ed25519":
            if len(data) != 32:
                raise InvalidArgument("a raw Ed25519 private key must be 32 bytes")
            return private_der(ed25519.Ed25519PrivateKey.from_private_bytes(data))
        return data
    der = _checked_structure(spec, fmt, data)
    if spec.family in ("ml_dsa", "ml_kem"):
        return der
    return private_der(load_private_der(spec, der))


def import_public_key(spec: AlgorithmSpec, data: bytes) -> bytes:
    """The SubjectPublicKeyInfo DER of a public key imported alone (format ``spki``, DER
    or PEM) for an asymmetric ``spec``, checked to parse; InvalidArgument as
    :func:`import_private_material`. ``load_public`` checks it against ``spec``."""
    check_import_format(spec, "spki")
    der = _checked_structure(spec, "spki", data)
    load_public_der_or_pem(spec, der)
    return der
