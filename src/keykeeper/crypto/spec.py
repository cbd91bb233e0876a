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
    STORE = "store"
    """Stored data, not a key: KMIP Secret Data and Opaque Objects a client registers and
    gets back (kmip/ops/register.py). No cryptographic operation accepts it."""


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

    @property
    def quantum_safe(self) -> bool:
        """Whether the algorithm keeps its protection against a quantum adversary (the
        "post-quantum" column of docs/algorithms.md): a post-quantum algorithm (ML-KEM,
        FIPS 203; ML-DSA, FIPS 204), or a symmetric one of 256-bit security strength, which
        Grover's search leaves at about 128 bits (AES-256, ChaCha20, HMAC-SHA256 and up,
        AES-256 key wrap; NSA CNSA 2.0 keeps AES-256). AES-128 and AES-192 (Grover: about
        64 and 96 bits) and every RSA, elliptic-curve and Edwards-curve algorithm (Shor)
        are not."""
        return self.post_quantum or (not self.asymmetric and self.security_strength >= 256)
