"""Sign, verify, MAC, verify-MAC, ML-KEM encapsulation and public keys: the operations of
keys with purpose ``sign``, ``mac`` and ``kem``, mixed into
:class:`keykeeper.service.operations.Crypto` (which selects, checks and counts; see its
module docstring for the rules of use)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TypeVar

from keykeeper.crypto import KeyHandle
from keykeeper.crypto.registry import Purpose
from keykeeper.domain.keys import Key
from keykeeper.domain.states import ERASED, Use
from keykeeper.errors import FailedPrecondition, InvalidArgument, NotFound
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.crypto_items import verify_any
from keykeeper.service.lookup import KeyLookup

__all__ = ["SignMacKemMixin"]

T = TypeVar("T")


class SignMacKemMixin(ABC):
    _lookup: KeyLookup
    _authz: Authorizer

    @abstractmethod
    def _key(self, ctx: RequestContext, ref: str, purpose: Purpose, op: str,
             context: Mapping[str, str] | None = None) -> Key: ...

    @abstractmethod
    def _limit(self, ctx: RequestContext, key: Key) -> None: ...

    @abstractmethod
    def _handle(self, ctx: RequestContext, key: Key, version: int | None, use: Use,
                allow_compromised: bool = False) -> KeyHandle: ...

    @abstractmethod
    def _counted(self, key: Key, number: int, op: Callable[[], T]) -> T: ...

    # -- sign purpose -----------------------------------------------------------------------
    def sign(self, ctx: RequestContext, ref: str, data: bytes, *, prehashed: bool,
             signature_format: str | None, key_version: int | None = None) -> tuple[bytes, int]:
        key = self._key(ctx, ref, Purpose.SIGN, "sign")
        handle = self._handle(ctx, key, key_version, Use.PROTECT)
        number = ctx.key_version
        assert number is not None
        sig = self._counted(key, number, lambda: handle.sign(
            data, prehashed=prehashed, signature_format=signature_format or "der"))
        return sig, number

    def verify(self, ctx: RequestContext, ref: str, data: bytes, signature: bytes, *,
               prehashed: bool, signature_format: str | None,
               key_version: int | None = None,
               allow_compromised: bool = False) -> tuple[bool, int]:
        """Verify with ``key_version``, else the primary version and then, if that says
        invalid, the older versions (see :meth:`_verify_any`)."""
        key = self._key(ctx, ref, Purpose.SIGN, "verify")
        fmt = signature_format or "der"
        return self._verify_any(ctx, key, key_version, allow_compromised, lambda h: h.verify(
            data, signature, prehashed=prehashed, signature_format=fmt))

    def _verify_any(self, ctx: RequestContext, key: Key, key_version: int | None,
                    allow_compromised: bool,
                    check: Callable[[KeyHandle], bool]) -> tuple[bool, int]:
        """crypto_items.verify_any with this key's handles (each through the use check)."""
        return verify_any(ctx, key, key_version, check, lambda n: self._handle(
            ctx, key, n, Use.PROCESS, allow_compromised))

    # -- mac purpose ------------------------------------------------------------------------
    def mac(self, ctx: RequestContext, ref: str, message: bytes,
            key_version: int | None = None) -> tuple[bytes, int]:
        key = self._key(ctx, ref, Purpose.MAC, "mac")
        handle = self._handle(ctx, key, key_version, Use.PROTECT)
        number = ctx.key_version
        assert number is not None
        return self._counted(key, number, lambda: handle.mac(message)), number

    def verify_mac(self, ctx: RequestContext, ref: str, message: bytes, tag: bytes,
                   key_version: int | None = None, *,
                   allow_compromised: bool = False) -> tuple[bool, int]:
        """Verify a tag as :meth:`verify` does a signature (older versions tried when no
        ``key_version`` is given and the primary says invalid)."""
        key = self._key(ctx, ref, Purpose.MAC, "verify-mac")
        return self._verify_any(ctx, key, key_version, allow_compromised,
                                lambda h: h.verify_mac(message, tag))

    # -- kem purpose ------------------------------------------------------------------------
    def encapsulate(self, ctx: RequestContext, ref: str,
                    key_version: int | None = None) -> tuple[bytes, bytes, int]:
        key = self._key(ctx, ref, Purpose.KEM, "encapsulate")
        handle = self._handle(ctx, key, key_version, Use.PROTECT)
        number = ctx.key_version
        assert number is not None
        secret, ct = self._counted(key, number, handle.encapsulate)
        return secret, ct, number

    def decapsulate(self, ctx: RequestContext, ref: str, ciphertext: bytes,
                    key_version: int | None = None, *,
                    allow_compromised: bool = False) -> tuple[bytes, int]:
        key = self._key(ctx, ref, Purpose.KEM, "decapsulate")
        if key_version is None and sum(
                v.state not in ERASED for v in key.versions) > 1:
            # ML-KEM's implicit rejection (FIPS 203 §7.3) answers a wrong secret, not an
            # error, for a ciphertext of another version: never guess the version.
            raise InvalidArgument(
                f"key '{key.ref}' has several versions and an ML-KEM ciphertext names none: "
                "give key_version (the one encapsulate answered)")
        secret = self._handle(ctx, key, key_version, Use.PROCESS,
                              allow_compromised).decapsulate(ciphertext)
        assert ctx.key_version is not None
        return secret, ctx.key_version

    # -- any asymmetric key -----------------------------------------------------------------
    def public_key(self, ctx: RequestContext, ref: str,
                   version: int | None = None) -> tuple[str, int, str]:
        self._lookup.require_unsealed()
        key = self._lookup.get(ctx, ref)
        self._authz.require_key(ctx, "public_key", key, ref)
        self._limit(ctx, key)
        number = key.primary_version if version is None else version
        v = key.version(number)
        if v is None and number == 0:  # an external key before its first import
            raise FailedPrecondition(f"key '{key.ref}' has no key material yet")
        if v is None:
            raise NotFound(f"key '{key.ref}' has no version {number}")
        if v.public_key_pem is None:
            raise FailedPrecondition(f"key '{key.ref}' ({key.algorithm}) has no public key")
        ctx.key_version = number
        return v.public_key_pem, number, key.algorithm
