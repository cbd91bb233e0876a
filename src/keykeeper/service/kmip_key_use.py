"""Using a key for KMIP without its material leaving keykeeper, mixed into
:class:`keykeeper.service.kmip_keys.KmipKeys`: wrapping key material being served by a
Get (KMIP Key Wrapping Specification) and usage allocations (KMIP Get Usage Allocation).
Authorization, states and usage limits are checked as for REST's data plane."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from keykeeper.crypto.registry import get_spec
from keykeeper.crypto.wrap import exportable_material
from keykeeper.domain.lifecycle import check_use, periods_for, usage_limit
from keykeeper.domain.states import Use
from keykeeper.errors import FailedPrecondition, InvalidArgument, NotFound
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.keys import KeyAdmin
from keykeeper.service.lookup import KeyLookup
from keykeeper.service.usage import UsageCounter

__all__ = ["MAX_ALLOCATION", "KmipKeyUseMixin"]

# The most protect operations one Get Usage Allocation may reserve: a caller holding only
# ``encrypt`` must not use up a key's whole usage limit (2^32 for AES-GCM) in one request.
MAX_ALLOCATION = 2 ** 20

_OAEP_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA256": hashes.SHA256, "SHA384": hashes.SHA384, "SHA512": hashes.SHA512}

def ser_public(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidArgument("not an RSA public key")
    return key



class KmipKeyUseMixin:
    """Wrap and allocate (module docstring)."""

    _d: Deps
    _lookup: KeyLookup
    _authz: Authorizer
    _keys: KeyAdmin
    _usage: UsageCounter | None

    def wrap(self, ctx: RequestContext, key_id: str, version: int, data: bytes, *,
             method: str, hash_name: str = "SHA256") -> bytes:
        """``data`` (key material being served by a Get) wrapped under version ``version``
        of the key ``key_id`` (KMIP Key Wrapping Specification, KMIP 2.1 §2.1.5):
        ``method`` ``"nist_key_wrap"`` (RFC 3394) or ``"aes_key_wrap_padding"`` (RFC 5649)
        with a key of purpose ``wrap`` (AES_256_KWP), or ``"rsa_oaep"`` (RSAES-OAEP with
        ``hash_name`` for the digest and MGF1) with the public key of an RSA key of purpose
        ``encrypt`` or ``wrap``. The wrapping key must be visible to the caller
        (``key.get``) and usable to protect now. InvalidArgument for a key that cannot
        wrap so, or data that does not fit; FailedPrecondition for a key not usable."""
        self._lookup.require_unsealed()
        saved = (ctx.namespace, ctx.key_id, ctx.key_version)
        try:
            wkey = self._keys.get(ctx, key_id, "key.get")
        finally:
            ctx.namespace, ctx.key_id, ctx.key_version = saved
        v = wkey.version(version)
        if v is None:
            raise NotFound(f"key '{wkey.ref}' has no version {version}")
        check_use(wkey, v, Use.PROTECT, self._d.clock(),
                  periods_for(wkey, *self._lookup.namespace_periods(wkey.namespace)))
        spec = get_spec(wkey.algorithm)
        if method in ("nist_key_wrap", "aes_key_wrap_padding"):
            if spec.family != "aes_kwp":
                raise InvalidArgument(f"key '{wkey.ref}' ({wkey.algorithm}) is not an AES key "
                                      "wrapping key (purpose 'wrap', AES_256_KWP)")
            handle = self._lookup.handle(wkey, version)
            if method == "aes_key_wrap_padding":
                return handle.wrap(data)
            if len(data) < 16 or len(data) % 8:
                raise InvalidArgument("AES key wrap (RFC 3394) wraps a multiple of 8 bytes, "
                                      "16 or more: use AES key wrap with padding (RFC 5649)")
            kek, _ = exportable_material(handle)
            return keywrap.aes_key_wrap(kek, data)
        if method != "rsa_oaep":
            raise InvalidArgument(f"unknown wrapping method '{method[:32]}'")
        if not spec.family.startswith("rsa") or wkey.purpose.value not in ("encrypt", "wrap") \
                or v.public_key_pem is None:
            raise InvalidArgument(f"key '{wkey.ref}' ({wkey.algorithm}) is not an RSA "
                                  "encryption or wrapping key")
        if hash_name not in _OAEP_HASHES:
            raise InvalidArgument("RSA-OAEP wrapping uses SHA-256, SHA-384 or SHA-512")
        public = ser_public(v.public_key_pem)
        algorithm = _OAEP_HASHES[hash_name]()
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm), algorithm=algorithm, label=None)
        limit = public.key_size // 8 - 2 * algorithm.digest_size - 2
        if len(data) > limit:
            raise InvalidArgument(f"the key material is {len(data)} bytes; RSA-OAEP with this "
                                  f"key wraps at most {limit}")
        return public.encrypt(data, oaep)

    def allocate(self, ctx: RequestContext, key_id: str, version: int, count: int) -> int:
        """Reserve ``count`` protect operations of ``version`` (KMIP Get Usage Allocation,
        KMIP 2.1 §6.1.33): they count as done against the key's usage limit (its own, or
        the algorithm's). Needs the purpose's protect permission (``encrypt``, ``sign``,
        ``mac``; ``key.get`` for a wrap key) and a version usable to protect now.
        InvalidArgument for a count below 1 or above :data:`MAX_ALLOCATION`, or a key
        without a usage limit;
        FailedPrecondition when fewer than ``count`` remain (none is kept)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidArgument("Usage Limits Count must be at least 1")
        if count > MAX_ALLOCATION:
            raise InvalidArgument(f"Usage Limits Count is at most {MAX_ALLOCATION} per request")
        self._lookup.require_unsealed()
        ctx.key_version = version
        key = self._lookup.get(ctx, key_id)
        operation = {"encrypt": "encrypt", "sign": "sign", "mac": "mac"}.get(
            key.purpose.value, "key.get")
        self._authz.require_key(ctx, operation, key)
        v = key.version(version)
        if v is None:
            raise NotFound(f"key '{key.ref}' has no version {version}")
        check_use(key, v, Use.PROTECT, self._d.clock(),
                  periods_for(key, *self._lookup.namespace_periods(key.namespace)))
        if usage_limit(key) is None:
            raise InvalidArgument(f"key '{key.ref}' has no usage limit to allocate from")
        if self._usage is None:
            raise FailedPrecondition("usage counting is not running on this node")
        granted = self._usage.reserve(key, version, count)
        if granted < count:
            self._usage.refund(key.id, version, granted)
            raise FailedPrecondition(f"key version {version} has fewer than {count} uses left")
        return granted
