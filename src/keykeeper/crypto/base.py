"""Base classes of loaded keys: :class:`KeyHandle` (private or secret) and :class:`PublicKeyHandle`.

A handle wraps one pyca/cryptography key object for one :class:`AlgorithmSpec`. Handles
are made only by :func:`keykeeper.crypto.load_private` / :func:`~keykeeper.crypto.load_public`,
are meant to be loaded once and cached by the caller, never show their material in
``repr``, and refuse pickling and copying (as Tink's keyset handles do), so material
cannot leak into a log, a cache dump or another process by accident.

Every operation a family does not support raises
``FailedPrecondition("algorithm X does not support <op>")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from keykeeper.crypto.spec import AlgorithmSpec
from keykeeper.errors import FailedPrecondition, InvalidArgument

__all__ = ["SIGNATURE_FORMATS", "KeyHandle", "PublicKeyHandle"]

SIGNATURE_FORMATS: frozenset[str] = frozenset({"der", "p1363"})
"""``der``: the algorithm's native encoding (X9.62 DER for ECDSA); ``p1363``: ECDSA ``r || s``."""


class _Sealed:
    """Shared behaviour: spec, masked repr, no pickling or copying, FailedPrecondition."""

    __slots__ = ("_spec",)
    _kind = "KeyHandle"

    def __init__(self, spec: AlgorithmSpec) -> None:
        self._spec = spec

    @property
    def spec(self) -> AlgorithmSpec:
        """The algorithm this key is for."""
        return self._spec

    def __repr__(self) -> str:
        return f"<{self._kind} {self._spec.name}>"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{self._kind} objects cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(f"{self._kind} objects cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError(f"{self._kind} objects cannot be pickled")

    def __copy__(self) -> NoReturn:
        raise TypeError(f"{self._kind} objects cannot be copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError(f"{self._kind} objects cannot be copied")

    def _unsupported(self, operation: str) -> NoReturn:
        raise FailedPrecondition(f"algorithm {self._spec.name} does not support {operation}")

    def _check_signature_args(self, prehashed: bool, signature_format: str) -> None:
        """Validate the sign/verify options common to all families (InvalidArgument)."""
        if signature_format not in SIGNATURE_FORMATS:
            raise InvalidArgument("signature_format must be 'der' or 'p1363'")
        if signature_format == "p1363" and self._spec.family != "ecdsa":
            raise InvalidArgument(
                f"signature_format 'p1363' applies to ECDSA only, not {self._spec.name}"
            )
        if prehashed and self._spec.family not in ("ecdsa", "rsa_pss", "rsa_pkcs1"):
            raise InvalidArgument(
                f"algorithm {self._spec.name} signs the whole message; send the message, not a "
                "digest"
            )

    # -- operations shared by private and public handles ---------------------------------

    def public_key_pem(self) -> str:
        """SubjectPublicKeyInfo PEM of the public key (asymmetric only; FailedPrecondition)."""
        self._unsupported("public keys")

    def verify(
        self,
        data: bytes,
        signature: bytes,
        *,
        prehashed: bool = False,
        signature_format: str = "der",
    ) -> bool:
        """True if ``signature`` is valid over ``data``; False for any bad signature.

        Raises InvalidArgument only for bad arguments (see :meth:`KeyHandle.sign`).
        """
        self._unsupported("verify")

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt; see :meth:`KeyHandle.encrypt`."""
        self._unsupported("encrypt")

    def encapsulate(self) -> tuple[bytes, bytes]:
        """ML-KEM encapsulation: ``(shared_secret(32), ciphertext)``."""
        self._unsupported("encapsulate")

    def wrap(self, material: bytes) -> bytes:
        """Wrap key ``material`` (wrap-purpose keys only; see :mod:`keykeeper.crypto.wrap`)."""
        self._unsupported("wrap")


class PublicKeyHandle(_Sealed):
    """A loaded public key: ``public_key_pem``, ``verify``, ``encrypt`` (RSA-OAEP),
    ``encapsulate`` (ML-KEM); any other operation raises FailedPrecondition."""

    __slots__ = ()
    _kind = "PublicKeyHandle"


class KeyHandle(_Sealed):
    """A loaded private or secret key; one subclass per family group."""

    __slots__ = ()
    _kind = "KeyHandle"

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt ``blob`` with ``aad``; any failure raises DecryptionFailed (uniform)."""
        self._unsupported("decrypt")

    def encrypt_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """Encrypt each ``(plaintext, aad)``; the same blobs as :meth:`encrypt` one by one."""
        return [self.encrypt(plaintext, aad) for plaintext, aad in items]

    def sign(self, data: bytes, *, prehashed: bool = False, signature_format: str = "der") -> bytes:
        """Sign ``data`` (or, with ``prehashed``, its digest); see the family's docstring."""
        self._unsupported("sign")

    def mac(self, message: bytes) -> bytes:
        """HMAC tag of ``message`` (full length)."""
        self._unsupported("mac")

    def verify_mac(self, message: bytes, tag: bytes) -> bool:
        """Constant-time check of a full-length tag; any other length is False."""
        self._unsupported("verify_mac")

    def decapsulate(self, ciphertext: bytes) -> bytes:
        """ML-KEM decapsulation; a wrong-length ciphertext raises DecryptionFailed."""
        self._unsupported("decapsulate")

    def unwrap(self, wrapped: bytes) -> bytes:
        """Unwrap what :meth:`wrap` made (wrap-purpose keys only); InvalidArgument, one
        uniform message, for anything that does not unwrap."""
        self._unsupported("unwrap")


def require_bytes(name: str, value: object) -> bytes:
    """Return ``value`` as bytes, or raise InvalidArgument if it is not bytes-like."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise InvalidArgument(f"{name} must be bytes")
    return bytes(value)
