"""PKCS#11 mechanisms and parameters for keykeeper's algorithms (PKCS#11 v2.40 Current
Mechanisms §2.1, §2.3, §2.9, §2.13, §2.15), matching crypto/ exactly so that an HSM key's
ciphertexts and signatures are those of a software key:

* AES-GCM: ``CKM_AES_GCM``, a 96-bit nonce from ``os.urandom``, 128-bit tag
  (NIST SP 800-38D); the blob is ``nonce(12) || ciphertext || tag(16)``.
* RSA-PSS: ``CKM_RSA_PKCS_PSS`` over a SHA-256 digest, MGF1-SHA-256, 32-byte salt.
* RSA-OAEP: ``CKM_RSA_PKCS_OAEP``, SHA-256, MGF1-SHA-256, the caller's ``aad`` as label.
* ECDSA: ``CKM_ECDSA`` over the spec's digest; the token answers ``r || s``.
* HMAC: ``CKM_SHA256_HMAC`` / ``CKM_SHA384_HMAC`` / ``CKM_SHA512_HMAC``, full-length tags.
"""

from __future__ import annotations

import hashlib
from typing import Final

from cryptography.hazmat.primitives.asymmetric import utils
from pkcs11 import MGF, Mechanism

from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.errors import InvalidArgument, Unavailable

__all__ = ["check_digest", "coordinate_size", "digest", "ecdsa_raw_to_der", "hmac_mechanism",
           "oaep_params", "pss_params"]

_HASH: Final = {"SHA256": (Mechanism.SHA256, MGF.SHA256, 32),
                "SHA384": (Mechanism.SHA384, MGF.SHA384, 48),
                "SHA512": (Mechanism.SHA512, MGF.SHA512, 64)}
_HMAC: Final = {"SHA256": Mechanism.SHA256_HMAC, "SHA384": Mechanism.SHA384_HMAC,
                "SHA512": Mechanism.SHA512_HMAC}


def _hash(spec: AlgorithmSpec) -> tuple[Mechanism, MGF, int]:
    if spec.hash_name not in _HASH:
        raise InvalidArgument(f"algorithm {spec.name} has no hash function")
    return _HASH[spec.hash_name]


def digest(spec: AlgorithmSpec, data: bytes) -> bytes:
    """The spec's hash of ``data`` (computed here: a digest is not secret)."""
    _hash(spec)
    return hashlib.new(str(spec.hash_name).lower(), data).digest()


def check_digest(spec: AlgorithmSpec, data: bytes) -> bytes:
    """``data`` as a prehashed digest: InvalidArgument unless it has the hash's length
    (the same message as crypto/ gives)."""
    size = _hash(spec)[2]
    if len(data) != size:
        raise InvalidArgument(
            f"a prehashed {spec.hash_name} digest must be {size} bytes, not {len(data)}")
    return data


def pss_params(spec: AlgorithmSpec) -> tuple[Mechanism, MGF, int]:
    """``CK_RSA_PKCS_PSS_PARAMS``: hash, MGF1 with the same hash, salt of the digest's size."""
    return _hash(spec)


def oaep_params(spec: AlgorithmSpec, label: bytes) -> tuple[Mechanism, MGF, bytes | None]:
    """``CK_RSA_PKCS_OAEP_PARAMS``: hash, MGF1 with the same hash, ``label`` (None if empty,
    as crypto/rsa.py passes it to pyca)."""
    h, mgf, _ = _hash(spec)
    return h, mgf, label or None


def hmac_mechanism(spec: AlgorithmSpec) -> Mechanism:
    """``CKM_SHA<n>_HMAC`` for an HMAC spec (full-length output)."""
    return _HMAC[spec.hash_name or ""]


def coordinate_size(spec: AlgorithmSpec) -> int:
    """Bytes of each of ECDSA's ``r`` and ``s`` for the spec's curve (32, 48)."""
    return (spec.key_bits + 7) // 8


def ecdsa_raw_to_der(spec: AlgorithmSpec, raw: bytes) -> bytes:
    """The token's ``r || s`` as an X9.62 ``ECDSA-Sig-Value`` (DER); Unavailable if the
    token answered a signature of the wrong size."""
    size = coordinate_size(spec)
    if len(raw) != 2 * size:
        raise Unavailable("the HSM returned a malformed ECDSA signature")
    return utils.encode_dss_signature(int.from_bytes(raw[:size], "big"),
                                      int.from_bytes(raw[size:], "big"))
