"""Message digests for the KMIP Hash operation (KMIP 2.1 §6.1 "Hash"): SHA-2 and SHA-3 only.

SHA-1 is refused although NIST SP 800-131A Rev. 2 §9 still accepts it outside signature
generation: a keyless Hash cannot know its caller's use (a digest to be signed elsewhere
is one), SHA-1 collisions are practical, and NIST retires it by 2030. MD5, RIPEMD-160 and
the like are refused too (SP 800-131A Rev. 2 Table 8 lists none of them).
"""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives import hashes

from keykeeper.errors import InvalidArgument

__all__ = ["DIGESTS", "digest"]

DIGESTS: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    "SHA224": hashes.SHA224,
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
    "SHA512_224": hashes.SHA512_224,
    "SHA512_256": hashes.SHA512_256,
    "SHA3_224": hashes.SHA3_224,
    "SHA3_256": hashes.SHA3_256,
    "SHA3_384": hashes.SHA3_384,
    "SHA3_512": hashes.SHA3_512,
}
"""Accepted names (as kmip/crypto_params.py's ``hash_name`` gives them) -> pyca hashes."""


def digest(algorithm: str, data: bytes) -> bytes:
    """The ``algorithm`` digest of ``data``: 28 to 64 bytes. InvalidArgument for a name
    not in :data:`DIGESTS`."""
    cls = DIGESTS.get(algorithm)
    if cls is None:
        raise InvalidArgument(f"hashing algorithm {algorithm[:32]} is not supported")
    h = hashes.Hash(cls())
    h.update(data)
    return h.finalize()
