"""Cryptographic operations with managed keys: encrypt, decrypt, rewrap, data keys,
sign, verify, MAC, public keys, ML-KEM encapsulation, random bytes and digests.

Protect operations (encrypt, data-key, sign, mac, encapsulate) use the primary
version unless ``key_version`` names another usable version (never silently
ignored); process operations (decrypt, verify, verify-mac, decapsulate) use the
version the ciphertext names or the caller gives (verify and verify-mac without one: the
primary, then the older versions when it says invalid -- signatures and tags name no
version). Every use is checked at the clock's
``now`` by :func:`keykeeper.domain.lifecycle.check_use` (states, activation and
deactivation dates, minimum versions, crypto-periods -- the key's, else its namespace's,
else NIST SP 800-57 Part 1 Table 1 --, and compromise: processing with a compromised key
or version needs ``allow_compromised``, which the audit record then shows). Every protect
operation first takes one unit of its version's usage count (service/usage.py), refused
at the version's limit. Every decryption failure is the one uniform
``decryption_failed``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar

from keykeeper.authz.policy import Access
from keykeeper.crypto import KeyHandle, random_bytes
from keykeeper.crypto.digest import digest
from keykeeper.crypto.registry import Purpose, get_spec
from keykeeper.domain.ciphertext import (
    Ciphertext,
    associated_data,
    canonical_context,
    header,
)
from keykeeper.domain.keys import Key
from keykeeper.domain.lifecycle import Periods, check_use, periods_for, usage_limit
from keykeeper.domain.states import KeyState, Use, VersionState
from keykeeper.errors import (
    DecryptionFailed,
    FailedPrecondition,
    InvalidArgument,
    KeykeeperError,
    NotFound,
    PermissionDenied,
    WrongPurpose,
)
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.crypto_items import (
    DATA_KEY_SPECS,
    MAX_PLAINTEXT,
    BatchItem,
    DataKey,
    Encrypted,
    Sealer,
    check_context,
    item_problem,
)
from keykeeper.service.crypto_sign import SignMacKemMixin
from keykeeper.service.deps import utcnow
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.ratelimit import RateLimiter
from keykeeper.service.usage import UsageCounter, limit_reached

__all__ = ["MAX_PLAINTEXT", "Crypto", "DataKey", "Encrypted"]

T = TypeVar("T")


class Crypto(SignMacKemMixin):
    """The cryptographic operations. ``clock`` gives the ``now`` every use is checked at;
    ``usage`` counts protect operations (the server always passes one; None, which counts
    nothing, is for the usage-counting benchmark and for tests of other parts)."""

    def __init__(self, lookup: KeyLookup, authz: Authorizer,
                 limits: RateLimiter | None = None, *,
                 clock: Callable[[], datetime] = utcnow,
                 usage: UsageCounter | None = None) -> None:
        self._lookup = lookup
        self._authz = authz
        self._limits = limits
        self._clock = clock
        self._usage = usage
        # key id -> (the metadata, its namespace's periods, the periods): periods_for costs
        # about a microsecond, so it is reused while the (cached) metadata is the same.
        self._periods: dict[str, tuple[Key, tuple[int | None, int | None], Periods]] = {}

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
            raise WrongPurpose(
                f"key '{key.ref}' has purpose '{key.purpose}'; {op} needs a key with purpose "
                f"'{purpose}'")
        return key, access

    def _handle(self, ctx: RequestContext, key: Key, version: int | None, use: Use,
                allow_compromised: bool = False) -> KeyHandle:
        """The handle of ``version`` (None: the primary) for ``use`` at the clock's now
        (domain/lifecycle.py check_use: FailedPrecondition when refused, NotFound for no
        such version). Records the version in ctx before the check (a refused call's
        audit record names it: the compromise report and the monitor read it), and a
        needed ``allow_compromised``."""
        number = key.primary_version if version is None else version
        if number == 0 and version is None:  # an external key before its first import
            raise FailedPrecondition(f"key '{key.ref}' has no key material yet: import it "
                                     "first (origin 'external')")
        if number < 1:
            raise InvalidArgument("key_version must be at least 1")
        v = key.version(number)
        if v is None:
            raise NotFound(f"key '{key.ref}' has no version {number}")
        ctx.key_version = number
        check_use(key, v, use, self._clock(), self._periods_of(key),
                  allow_compromised=allow_compromised)
        if allow_compromised and (key.state == KeyState.COMPROMISED
                                  or v.state == VersionState.COMPROMISED):
            ctx.allow_compromised = True  # the recovery flag was needed: audited
        return self._lookup.handle(key, number)

    def _periods_of(self, key: Key) -> Periods:
        """The key's crypto-period (domain/lifecycle.py periods_for), its namespace's
        defaults read through the lookup's 1 s cache."""
        defaults = self._lookup.namespace_periods(key.namespace)
        known = self._periods.get(key.id)
        if known is not None and known[0] is key and known[1] == defaults:
            return known[2]
        periods = periods_for(key, *defaults)
        if len(self._periods) >= 50_000:
            self._periods.clear()
        self._periods[key.id] = (key, defaults, periods)
        return periods

    # -- usage counting (service/usage.py) ---------------------------------------------------
    def _reserve(self, key: Key, number: int, n: int) -> int:
        """Units of ``number``'s usage count for ``n`` protect operations: n, fewer near
        the limit; FailedPrecondition when none is left."""
        return n if self._usage is None else self._usage.reserve(key, number, n)

    def _refund(self, key: Key, number: int, n: int) -> None:
        if self._usage is not None and n:
            self._usage.refund(key.id, number, n)

    def _counted(self, key: Key, number: int, op: Callable[[], T]) -> T:
        """Run one protect operation under one unit of the count (given back if it fails)."""
        if self._usage is None:
            return op()
        self._usage.reserve(key, number, 1)
        try:
            return op()
        except BaseException:
            self._usage.refund(key.id, number, 1)
            raise

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
        problem = item_problem(plaintext, context)
        if problem is not None:
            raise problem
        sealer = self._sealer(ctx, key, key_version)
        aad = sealer.aad_prefix + canonical_context(context)
        if self._usage is not None:
            self._usage.reserve(key, sealer.number, 1)
        try:
            return sealer.encrypted(sealer.handle.encrypt(plaintext, aad))
        except BaseException:
            self._refund(key, sealer.number, 1)
            raise

    def _sealer(self, ctx: RequestContext, key: Key, version: int | None) -> Sealer:
        """The handle, version number and header of a protect operation under ``version``
        (None: the primary version)."""
        handle = self._handle(ctx, key, version, Use.PROTECT)
        number = ctx.key_version
        assert number is not None
        head = header(key.id, number)
        return Sealer(handle, number, head + ":", head.encode("ascii") + b"\x00")

    def decrypt(self, ctx: RequestContext, ref: str, ciphertext: str,
                context: Mapping[str, str] | None = None, *,
                allow_compromised: bool = False) -> tuple[bytes, int]:
        key = self._key(ctx, ref, Purpose.ENCRYPT, "decrypt", context)
        return self._decrypt(ctx, key, ciphertext, context, allow_compromised)

    def _decrypt(self, ctx: RequestContext, key: Key, text: str,
                 context: Mapping[str, str] | None,
                 allow_compromised: bool = False) -> tuple[bytes, int]:
        parsed = Ciphertext.parse(text)
        if parsed.key_id != key.id or key.version(parsed.version) is None:
            raise DecryptionFailed()
        handle = self._handle(ctx, key, parsed.version, Use.PROCESS, allow_compromised)
        aad = associated_data(key.id, parsed.version, check_context(context))
        return handle.decrypt(parsed.body, aad), parsed.version

    def encrypt_batch(self, ctx: RequestContext, ref: str,
                      items: Sequence[BatchItem]) -> list[Encrypted | Exception]:
        """Encrypt each item; an item's own error is returned in its place.

        The key, each version's handle and its header are resolved once per batch, and
        the items of one version are sealed in one call (one nonce draw).
        """
        key, access = self._key_access(ctx, ref, Purpose.ENCRYPT, "encrypt")
        problems = [item_problem(i.plaintext, i.context)
                    or self._denied(ctx, access, "encrypt", key, i.context) for i in items]
        if any(p is None for p in problems):
            self._limit(ctx, key)
        if all(p is None and i.key_version is None for p, i in zip(problems, items, strict=True)):
            # The common batch: every item valid, all under the primary version.
            sealer = self._sealer(ctx, key, None)
            ctx.key_version = None
            blobs = self._seal_all(key, sealer, items)
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
            refused: FailedPrecondition | None = None
            try:
                granted = self._reserve(key, sealer.number, len(indices))
            except FailedPrecondition as exc:
                granted, refused = 0, exc
            for j, i in enumerate(indices):
                if j >= granted:  # past the version's usage limit
                    out[i] = (limit_reached(sealer.number, usage_limit(key)) if refused is None
                              else FailedPrecondition(refused.detail))
                    continue
                item = items[i]
                aad = sealer.aad_prefix + canonical_context(item.context)
                try:
                    out[i] = sealer.encrypted(sealer.handle.encrypt(item.plaintext, aad))
                except InvalidArgument as exc:
                    out[i] = exc
                    self._refund(key, sealer.number, 1)
        ctx.key_version = None
        return [r for r in out if r is not None]

    def _seal_all(self, key: Key, sealer: Sealer,
                  items: Sequence[BatchItem]) -> list[bytes] | None:
        """Every item sealed in one call under one reservation, or None when that cannot
        be (an item refused, the limit near): the batch then goes item by item."""
        n = len(items)
        try:
            granted = self._reserve(key, sealer.number, n)
        except FailedPrecondition:
            return None
        if granted < n:
            self._refund(key, sealer.number, granted)
            return None
        try:
            return sealer.handle.encrypt_many(
                [(i.plaintext, sealer.aad_prefix + canonical_context(i.context))
                 for i in items])
        except InvalidArgument:  # some item is refused (e.g. too long for RSA-OAEP)
            self._refund(key, sealer.number, n)
            return None
        except BaseException:
            self._refund(key, sealer.number, n)
            raise

    def decrypt_batch(self, ctx: RequestContext, ref: str,
                      items: list[tuple[str, Mapping[str, str] | None]], *,
                      allow_compromised: bool | Sequence[bool] = False,
                      ) -> list[tuple[bytes, int] | Exception]:
        """Decrypt each item; an item's own error is returned in its place.
        ``allow_compromised``: for every item, or one flag per item."""
        allow = ([allow_compromised] * len(items) if isinstance(allow_compromised, bool)
                 else list(allow_compromised))
        if len(allow) != len(items):
            raise InvalidArgument("allow_compromised needs one flag per item")
        key, access = self._key_access(ctx, ref, Purpose.ENCRYPT, "decrypt")
        if not access.conditions or any(access.permits(c, ctx.principal) for _, c in items
                                        if ctx.principal is not None):
            self._limit(ctx, key)
        out: list[tuple[bytes, int] | Exception] = []
        for (text, context), flag in zip(items, allow, strict=True):
            try:
                self._authz.check(ctx, access, "decrypt", key, context)
                out.append(self._decrypt(ctx, key, text, context, flag))
            except (InvalidArgument, FailedPrecondition, NotFound, DecryptionFailed,
                    PermissionDenied) as exc:
                out.append(exc)
        ctx.key_version = None
        return out

    def rewrap(self, ctx: RequestContext, ref: str, ciphertext: str,
               context: Mapping[str, str] | None = None, *,
               allow_compromised: bool = False, destination: str | None = None) -> Encrypted:
        """Decrypt (with ``allow_compromised`` for a compromised source version) and
        encrypt under the primary version -- of ``destination`` when given (another key of
        purpose encrypt, on which the caller needs ``encrypt``: AWS KMS's ReEncrypt
        DestinationKeyId; the way data leaves a key compromised as a whole, which cannot
        rotate) -- which counts one protect operation. The plaintext never leaves the
        server. The audit record names the source key and the source version (the one
        that processed; the compromise report looks for it) and the destination key; the
        new version is in the answer."""
        key = self._key(ctx, ref, Purpose.ENCRYPT, "rewrap", context)
        if destination is None:
            plaintext, source = self._decrypt(ctx, key, ciphertext, context,
                                              allow_compromised)
            try:
                return self._encrypt(ctx, key, plaintext, context, None)
            finally:
                ctx.key_version = source
        source_ns, source_id = ctx.namespace, ctx.key_id
        target = self._key(ctx, destination, Purpose.ENCRYPT, "encrypt", context)
        ctx.namespace, ctx.key_id = source_ns, source_id
        ctx.destination_key_id = target.id
        plaintext, source = self._decrypt(ctx, key, ciphertext, context, allow_compromised)
        try:
            return self._encrypt(ctx, target, plaintext, context, None)
        finally:
            ctx.key_version = source

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

    def random(self, ctx: RequestContext, length: int) -> bytes:
        self._lookup.require_unsealed()
        self._authz.require(ctx, "random")
        return random_bytes(length)

    def digest(self, ctx: RequestContext, algorithm: str, data: bytes) -> bytes:
        """The ``algorithm`` digest (crypto/digest.py ``DIGESTS``: ``SHA256``, ``SHA3_512``,
        ...) of ``data`` (at most MAX_PLAINTEXT bytes), authorized as ``random`` (keyless,
        like random bytes). InvalidArgument for another algorithm or longer data."""
        self._lookup.require_unsealed()
        self._authz.require(ctx, "random")
        if len(data) > MAX_PLAINTEXT:
            raise InvalidArgument(f"data to hash is limited to {MAX_PLAINTEXT} bytes")
        return digest(algorithm, data)
