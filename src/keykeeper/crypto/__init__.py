"""keykeeper's crypto layer: an algorithm registry over pyca/cryptography.

Pure, hazmat-like code: bytes in, bytes out, no storage, HTTP or lifecycle state. Legacy
algorithms (RSA-2048) are declared apart in :mod:`keykeeper.crypto.legacy` and allowed
only where :mod:`keykeeper.domain.algorithm_policy` says so.
"""

from keykeeper.crypto.aead import aead_open, aead_seal
from keykeeper.crypto.base import KeyHandle, PublicKeyHandle
from keykeeper.crypto.handles import generate_material, load_private, load_public, random_bytes
from keykeeper.crypto.registry import (
    ALGORITHMS,
    DEFAULT_ALGORITHMS,
    AlgorithmSpec,
    Purpose,
    get_spec,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "AlgorithmSpec",
    "KeyHandle",
    "PublicKeyHandle",
    "Purpose",
    "aead_open",
    "aead_seal",
    "generate_material",
    "get_spec",
    "load_private",
    "load_public",
    "random_bytes",
]
