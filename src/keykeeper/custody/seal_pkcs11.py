"""PKCS#11 seal: the root key is an AES-256 key generated inside the token.

The token object (custody/root.py :func:`~keykeeper.custody.root.generate_hsm_key`) never
leaves the HSM: it wraps the namespace KEKs and the 32-byte *root secret* (from which
custody derives the audit, receipt and page-token keys) with ``CKM_AES_GCM`` and the
associated data ``keykeeper/seal/pkcs11/v1``. The store keeps the key's ``CKA_ID`` and
the wrapped root secret; the token is configured on each node (KEYKEEPER_PKCS11_*), and
the server unseals itself at start (auto-unseal).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from keykeeper.custody.hsm.token import Token
from keykeeper.custody.root import HsmRoot, generate_hsm_key

__all__ = ["SealedPkcs11", "open_in_hsm", "seal_in_hsm"]

_AAD = b"keykeeper/seal/pkcs11/v1"


@dataclass(frozen=True, slots=True)
class SealedPkcs11:
    """What the store keeps: the root key's ``CKA_ID`` and the wrapped root secret."""

    key_id: bytes
    wrapped_root_secret: bytes

    def to_json(self) -> dict[str, object]:
        return {"key_id": self.key_id.hex(),
                "wrapped_root_secret": base64.b64encode(self.wrapped_root_secret).decode()}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SealedPkcs11:
        return cls(key_id=bytes.fromhex(str(data["key_id"])),
                   wrapped_root_secret=base64.b64decode(str(data["wrapped_root_secret"])))


def seal_in_hsm(token: Token, root_secret: bytes) -> tuple[SealedPkcs11, HsmRoot]:
    """Generate a new root key in ``token`` and wrap ``root_secret`` (32 bytes) under it.
    Raises Unavailable or FailedPrecondition on a token fault."""
    root = generate_hsm_key(token)
    return SealedPkcs11(root.key_id, root.wrap(root_secret, _AAD)), root


def open_in_hsm(token: Token, sealed: SealedPkcs11) -> tuple[bytes, HsmRoot]:
    """The root secret and the HSM root; Unavailable when the token, its login or the key
    fails (a missing key or a wrong blob included: nothing falls back to software)."""
    root = HsmRoot(token, sealed.key_id)
    return root.unwrap(sealed.wrapped_root_secret, _AAD), root
