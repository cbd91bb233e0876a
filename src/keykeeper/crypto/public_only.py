"""A key version imported as a public key alone (issue 6 §3): a :class:`KeyHandle` that
verifies, encrypts (RSA-OAEP), encapsulates (ML-KEM) and wraps with its public key, and
refuses every private operation with FailedPrecondition, so the service's one code path
for key handles serves such versions too."""

from __future__ import annotations

from typing import NoReturn

from keykeeper.crypto.base import KeyHandle, PublicKeyHandle
from keykeeper.errors import FailedPrecondition

__all__ = ["PublicOnlyKeyHandle"]


class PublicOnlyKeyHandle(KeyHandle):
    """The public half only; ``decrypt``, ``sign``, ``decapsulate``, ``unwrap`` raise
    ``FailedPrecondition("... has no private key ...")``."""

    __slots__ = ("_public",)
    _kind = "PublicOnlyKeyHandle"

    def __init__(self, public: PublicKeyHandle) -> None:
        super().__init__(public.spec)
        self._public = public

    def _no_private(self, operation: str) -> NoReturn:
        raise FailedPrecondition(
            f"this key version holds a public key only (imported with format 'spki'): it "
            f"cannot {operation}")

    def public_key_pem(self) -> str:
        return self._public.public_key_pem()

    def verify(self, data: bytes, signature: bytes, *, prehashed: bool = False,
               signature_format: str = "der") -> bool:
        return self._public.verify(data, signature, prehashed=prehashed,
                                   signature_format=signature_format)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        return self._public.encrypt(plaintext, aad)

    def encapsulate(self) -> tuple[bytes, bytes]:
        return self._public.encapsulate()

    def wrap(self, material: bytes) -> bytes:
        return self._public.wrap(material)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        self._no_private("decrypt")

    def sign(self, data: bytes, *, prehashed: bool = False, signature_format: str = "der") -> bytes:
        self._no_private("sign")

    def decapsulate(self, ciphertext: bytes) -> bytes:
        self._no_private("decapsulate")

    def unwrap(self, wrapped: bytes) -> bytes:
        self._no_private("unwrap")
