"""Cryptographic operations with managed keys: encrypt, decrypt, rewrap, data keys,
sign, verify, MAC, public keys, ML-KEM encapsulation, and random bytes.

Protect operations (encrypt, data-key, sign, mac, encapsulate) use the primary
version unless ``key_version`` names another usable version (never silently
ignored); process operations (decrypt, verify, verify-mac, decapsulate) use the
version the ciphertext names or the caller gives. States and purposes are checked
by domain/states.py; every decryption failure is the one uniform
``decryption_failed``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from pybase64 import b64encode_as_string

from keykeeper.authz.policy import Access
from keykeeper.crypto import KeyHandle, random_bytes
from keykeeper.crypto.registry import Purpose, get_spec
from keykeeper.domain.ciphertext import (
    Ciphertext,
    associated_data,
    canonical_context,
    header,
)
from keykeeper.domain.keys import Key
from keykeeper.domain.states import Use, check_key_use
from keykeeper.errors import (
    DecryptionFailed,
    FailedPrecondition,
    InvalidArgument,
    KeykeeperError,
    NotFound,
    PermissionDenied,
)
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.ratelimit import RateLimiter

__all__ = ["MAX_PLAINTEXT", "Crypto", "DataKey", "Encrypted"]

MAX_PLAINTEXT = 64 * 1024
MAX_CONTEXT_PAIRS = 64
DATA_KEY_SPECS = {"AES_256": 32, "AES_128": 16}


class BatchItem(Protocol):
    """One item of an encrypt batch (the REST struct has these attributes)."""

    @property
    def plaintext(self) -> bytes: ...
    @property
    def context(self) -> Mapping[str, str] | None: ...
    @property
    def key_version(self) -> int | None: ...


class Encrypted(NamedTuple):
    ciphertext: str
    key_version: int


class _Sealer(NamedTuple):
    handle: KeyHandle
    number: int
    head: str          # "keykeeper:v1:<key id>:<version>:"
    aad_prefix: bytes  # header, then a NUL byte; the canonical context follows

    def encrypted(self, blob: bytes) -> Encrypted:
        return Encrypted(self.head + b64encode_as_string(blob), self.number)


def _item_problem(plaintext: bytes, context: Mapping[str, str] | None) -> InvalidArgument | None:
    """Why one plaintext cannot be encrypted (size or context limits), or None."""
    if len(plaintext) > MAX_PLAINTEXT:
        return InvalidArgument(f"plaintext is larger than {MAX_PLAINTEXT} bytes")
    if context and len(context) > MAX_CONTEXT_PAIRS:
        return InvalidArgument(f"context holds at most {MAX_CONTEXT_PAIRS} pairs")
    return None


@dataclass(frozen=True, slots=True)
class DataKey:
    ciphertext: str
    key_version: int
    plaintext: bytes | None

    def __repr__(self) -> str:
        return f"DataKey(key_version={self.key_version}, plaintext=<hidden>)"


def _check_context(context: Mapping[str, str] | None) -> Mapping[str, str] | None:
    if context and len(context) > MAX_CONTEXT_PAIRS:
        raise InvalidArgument(f"context holds at most {MAX_CONTEXT_PAIRS} pairs")
    return context


class Crypto:
    def __init__(self, lookup: KeyLookup, authz: Authorizer,
                 limits: RateLimiter | None = None) -> None:
        self._lookup = lookup
        self._authz = authz
        self._limits = limits

    def is_symmetric(self, ctx: RequestContext, ref: str) -> bool:
        """True if ``ref`` names a symmetric key (cheap to use: microseconds per item).
        False when the key is asymmetric, or cannot be resolved (the operation itself
        then reports why)."""
        try:
            key = self._lookup.get(ctx, ref)
            # A key outside the caller's grants is treated as a missing one, so where the
            # request runs says nothing about it.
            return self._authz.can_see(ctx, key) and not get_spec(key.algorithm).asymmetric
        except KeykeeperError:
            return False

    # -- selection --------------------------------------------------------------------------
    def _key(self, ctx: RequestContext, ref: str, purpose: Purpose, op: str,
             context: Mapping[str, str] | None = None) -> Key:
        """The key for one operation, authorized for ``op`` with ``context`` (a grant's
        condition is checked on it)."""
        key, access = self._key_access(ctx, ref, purpose, op)
        self._authz.check(ctx, access, op.replace("-", "_"), key, context)
        self._limit(ctx, key)
        return key

    def _limit(self, ctx: RequestContext, key: Key) -> None:
        """The namespace's rate limit, charged only for calls the caller may make (a caller
        refused by its grants cannot drain the namespace's budget)."""
        if self._limits is not None:
            self._limits.check_namespace(ctx.principal, key.namespace)

    def _key_access(self, ctx: RequestContext, ref: str, purpose: Purpose,
                    op: str) -> tuple[Key, Access]:
        """The key and the caller's access (conditions unchecked: a batch checks them per
        item). NotFound for a key outside the caller's scope, before anything else is said
        about it."""
        self._lookup.require_unsealed()
        key = self._lookup.get(ctx, ref)
        access = self._authz.key_access(ctx, op.replace("-", "_"), key, ref)
        if key.purpose != purpose:
            raise FailedPrecondition(
                f"key '{key.ref}' has purpose '{key.purpose}'; {op} needs a key with purpose "
                f"'{purpose}'")
        return key, access

    def _handle(self, ctx: RequestContext, key: Key, version: int | None, use: Use) -> KeyHandle:
        number = key.primary_version if version is None else version
        if number < 1:
            raise InvalidArgument("key_version must be at least 1")
        v = key.version(number)
        if v is None:
            raise NotFound(f"key '{key.ref}' has no version {number}")
        check_key_use(key.state, v.state, use, version=number)
        ctx.key_version = number
        return self._lookup.handle(key, number)

    def _denied(self, ctx: RequestContext, access: Access, op: str, key: Key,
                context: Mapping[str, str] | None) -> PermissionDenied | None:
        """The item's error when a conditional grant does not hold for its context."""
        try:
            self._authz.check(ctx, access, op, key, context)
        except PermissionDenied as exc:
            return exc
        return None

    # -- encrypt purpose --------------------------------------------------------------------
    def encrypt(self, ctx: RequestContext, ref: str, plaintext: bytes,
                context: Mapping[str, str] | None = None,
                key_version: int | None = None) -> Encrypted:
        key = self._key(ctx, ref, Purpose.ENCRYPT, "encrypt", context)
        return self._encrypt(ctx, key, plaintext, context, key_version)

    def _encrypt(self, ctx: RequestContext, key: Key, plaintext: bytes,
                 context: Mapping[str, str] | None, key_version: int | None) -> Encrypted:
        problem = _item_problem(plaintext, context)
        if problem is not None:
            raise problem
        sealer = self._sealer(ctx, key, key_version)
        blob = sealer.handle.encrypt(plaintext, sealer.aad_prefix + canonical_context(context))
        return sealer.encrypted(blob)

    def _sealer(self, ctx: RequestContext, key: Key, version: int | None) -> _Sealer:
        """The handle, version number and header of a protect operation under ``version``
        (None: the primary version)."""
        handle = self._handle(ctx, key, version, Use.PROTECT)
        number = ctx.key_version
        assert number is not None
        head = header(key.id, number)
        return _Sealer(handle, number, head + ":", head.encode("ascii") + b"\x00")

    def decrypt(self, ctx: RequestContext, ref: str, ciphertext: str,
                context: Mapping[str, str] | None = None) -> tuple[bytes, int]:
        key = self._key(ctx, ref, Purpose.ENCRYPT, "decrypt", context)
        return self._decrypt(ctx, key, ciphertext, context)

    def _decrypt(self, ctx: RequestContext, key: Key, text: str,
                 context: Mapping[str, str] | None) -> tuple[bytes, int]:
        parsed = Ciphertext.parse(text)
        if parsed.key_id != key.id or key.version(parsed.version) is None:
            raise DecryptionFailed()
        handle = self._handle(ctx, key, parsed.version, Use.PROCESS)
        aad = associated_data(key.id, parsed.version, _check_context(context))
        return handle.decrypt(parsed.body, aad), parsed.version

    def encrypt_batch(self, ctx: RequestContext, ref: str,
                      items: Sequence[BatchItem]) -> list[Encrypted | Exception]:
        """Encrypt each item; an item's own error is returned in its place.

        The key, each version's handle and its header are resolved once per batch, and
        the items of one version are sealed in one call (one nonce draw).
        """
        key, access = self._key_access(ctx, ref, Purpose.ENCRYPT, "encrypt")
        problems = [_item_problem(i.plaintext, i.context)
                    or self._denied(ctx, access, "encrypt", key, i.context) for i in items]
        if any(p is None for p in problems):
            self._limit(ctx, key)
        if all(p is None and i.key_version is None for p, i in zip(problems, items, strict=True)):
            # The common batch: every item valid, all under the primary version.
            sealer = self._sealer(ctx, key, None)
            ctx.key_version = None
            try:
                blobs = sealer.handle.encrypt_many(
                    [(i.plaintext, sealer.aad_prefix + canonical_context(i.context))
                     for i in items])
            except InvalidArgument:
                blobs = None  # some item is refused (e.g. too long for RSA-OAEP): per item
            if blobs is not None:
                return [sealer.encrypted(b) for b in blobs]
        out: list[Encrypted | Exception | None] = list(problems)
        groups: dict[int | None, list[int]] = {}
        for i, item in enumerate(items):
            if problems[i] is None:
                groups.setdefault(item.key_version, []).append(i)
        for version, indices in groups.items():
            try:
                sealer = self._sealer(ctx, key, version)
            except (InvalidArgument, FailedPrecondition, NotFound) as exc:
                for i in indices:
                    out[i] = type(exc)(exc.detail)
                continue
            for i in indices:
                item = items[i]
                aad = sealer.aad_prefix + canonical_context(item.context)
                try:
                    out[i] = sealer.encrypted(sealer.handle.encrypt(item.plaintext, aad))
                except InvalidArgument as exc:
                    out[i] = exc
        ctx.key_version = None
        return [r for r in out if r is not None]

    def decrypt_batch(self, ctx: RequestContext, ref: str,
                      items: list[tuple[str, Mapping[str, str] | None]],
                      ) -> list[tuple[bytes, int] | Exception]:
        key, access = self._key_access(ctx, ref, Purpose.ENCRYPT, "decrypt")
        if not access.conditions or any(access.permits(c, ctx.principal) for _, c in items
                                        if ctx.principal is not None):
            self._limit(ctx, key)
        out: list[tuple[bytes, int] | Exception] = []
        for text, context in items:
            try:
                self._authz.check(ctx, access, "decrypt", key, context)
                out.append(self._decrypt(ctx, key, text, context))
            except (InvalidArgument, FailedPrecondition, NotFound, DecryptionFailed,
                    PermissionDenied) as exc:
                out.append(exc)
        ctx.key_version = None
        return out

    def rewrap(self, ctx: RequestContext, ref: str, ciphertext: str,
               context: Mapping[str, str] | None = None) -> Encrypted:
        key = self._key(ctx, ref, Purpose.ENCRYPT, "rewrap", context)
        plaintext, _ = self._decrypt(ctx, key, ciphertext, context)
        return self._encrypt(ctx, key, plaintext, context, None)

    def data_key(self, ctx: RequestContext, ref: str, key_spec: str | None = None,
                 context: Mapping[str, str] | None = None,
                 include_plaintext: bool = True) -> DataKey:
        size = DATA_KEY_SPECS.get(key_spec or "AES_256")
        if size is None:
            raise InvalidArgument("key_spec must be AES_256 or AES_128")
        key = self._key(ctx, ref, Purpose.ENCRYPT, "data-key", context)
        if key.algorithm.startswith("RSA_"):
            raise FailedPrecondition("data keys need a symmetric encryption key")
        dek = os.urandom(size)
        wrapped = self._encrypt(ctx, key, dek, context, None)
        return DataKey(wrapped.ciphertext, wrapped.key_version, dek if include_plaintext else None)

    # -- sign purpose -----------------------------------------------------------------------
    def sign(self, ctx: RequestContext, ref: str, data: bytes, *, prehashed: bool,
             signature_format: str | None, key_version: int | None = None) -> tuple[bytes, int]:
        key = self._key(ctx, ref, Purpose.SIGN, "sign")
        handle = self._handle(ctx, key, key_version, Use.PROTECT)
        sig = handle.sign(data, prehashed=prehashed, signature_format=signature_format or "der")
        assert ctx.key_version is not None
        return sig, ctx.key_version

    def verify(self, ctx: RequestContext, ref: str, data: bytes, signature: bytes, *,
               prehashed: bool, signature_format: str | None,
               key_version: int | None = None) -> tuple[bool, int]:
        key = self._key(ctx, ref, Purpose.SIGN, "verify")
        handle = self._handle(ctx, key, key_version, Use.PROCESS)
        ok = handle.verify(data, signature, prehashed=prehashed,
                           signature_format=signature_format or "der")
        assert ctx.key_version is not None
        return ok, ctx.key_version

    # -- mac purpose ------------------------------------------------------------------------
    def mac(self, ctx: RequestContext, ref: str, message: bytes,
            key_version: int | None = None) -> tuple[bytes, int]:
        key = self._key(ctx, ref, Purpose.MAC, "mac")
        tag = self._handle(ctx, key, key_version, Use.PROTECT).mac(message)
        assert ctx.key_version is not None
        return tag, ctx.key_version

    def verify_mac(self, ctx: RequestContext, ref: str, message: bytes, tag: bytes,
                   key_version: int | None = None) -> tuple[bool, int]:
        key = self._key(ctx, ref, Purpose.MAC, "verify-mac")
        ok = self._handle(ctx, key, key_version, Use.PROCESS).verify_mac(message, tag)
        assert ctx.key_version is not None
        return ok, ctx.key_version

    # -- kem purpose ------------------------------------------------------------------------
    def encapsulate(self, ctx: RequestContext, ref: str,
                    key_version: int | None = None) -> tuple[bytes, bytes, int]:
        key = self._key(ctx, ref, Purpose.KEM, "encapsulate")
        secret, ct = self._handle(ctx, key, key_version, Use.PROTECT).encapsulate()
        assert ctx.key_version is not None
        return secret, ct, ctx.key_version

    def decapsulate(self, ctx: RequestContext, ref: str, ciphertext: bytes,
                    key_version: int | None = None) -> tuple[bytes, int]:
        key = self._key(ctx, ref, Purpose.KEM, "decapsulate")
        secret = self._handle(ctx, key, key_version, Use.PROCESS).decapsulate(ciphertext)
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
        if v is None:
            raise NotFound(f"key '{key.ref}' has no version {number}")
        if v.public_key_pem is None:
            raise FailedPrecondition(f"key '{key.ref}' ({key.algorithm}) has no public key")
        ctx.key_version = number
        return v.public_key_pem, number, key.algorithm

    def random(self, ctx: RequestContext, length: int) -> bytes:
        self._lookup.require_unsealed()
        self._authz.require(ctx, "random")
        return random_bytes(length)
