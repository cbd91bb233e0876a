"""The two value types that describe an algorithm: :class:`Purpose`, :class:`AlgorithmSpec`.

Kept apart from :mod:`keykeeper.crypto.registry` so that ``crypto/legacy/`` can
declare its specs without importing the registry that gathers them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["AlgorithmSpec", "Purpose"]


class Purpose(enum.StrEnum):
    """Key usage; one per key (cryptographic segmentation, NIST SP 800-57 Part 1 §5.2)."""

    ENCRYPT = "encrypt"
    SIGN = "sign"
    MAC = "mac"
    WRAP = "wrap"
    KEM = "kem"


@dataclass(frozen=True, slots=True)
class AlgorithmSpec:
    """One full algorithm: primitive, parameters, hash, and what it is for.

    ``key_bits`` is the raw key size for AES, ChaCha20 and HMAC, the modulus size for
    RSA, the field size for elliptic curves (255 for Ed25519), and the NIST security
    category in bits (128/192/256) for ML-DSA and ML-KEM.
    ``security_strength`` is in bits, per NIST SP 800-57 Part 1 Rev 5 §5.6.1.1, Table 2
    (Table 3 for HMAC; FIPS 203 / FIPS 204 categories for ML-KEM / ML-DSA).
    """

    name: str
    purpose: Purpose
    family: str
    key_bits: int
    security_strength: int
    asymmetric: bool
    post_quantum: bool
    legacy: bool
    hash_name: str | None
