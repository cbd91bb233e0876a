"""KMIP Cryptographic Parameters (KMIP 2.1 §7.6) -> :class:`RawParams`, and the request
fields the six cryptographic operations share.

Enumerations become plain names (crypto/raw_params.py): Hashing Algorithm ``SHA_256`` ->
``SHA256``, ``SHA_3_256`` -> ``SHA3_256``; Cryptographic Algorithm ``HMAC_SHA384`` ->
algorithm ``HMAC`` with hash ``SHA384``, ``EC`` -> ``ECDSA``, ``ChaCha20Poly1305`` ->
``CHACHA20_POLY1305``; a Digital Signature Algorithm (``SHA256WithRSAEncryption``,
``RSASSA-PSS``, ``ECDSAWithSHA384``, ...) gives algorithm, padding and hash where the
structure does not name them itself. Unsupported values (3DES, MD5, DSA, ...) are kept by
name and refused by the service with the reason. An enumeration value the tables do not
know, or a field of the wrong type, is Invalid_Field.

The defaults of a request without some field are the object's own Cryptographic
Parameters attribute (stored by Register / Create / Add Attribute, kmip/attributes_store.py),
then the key's algorithm (service/raw_crypto.py).

Also the request handling the six operations share: the target object (:func:`target`,
:class:`Target`: stored parameters, Protect Stop / Process Start Date, Usage Limits),
the multi-part indicators (:func:`multi_part`) and the payload's byte fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum

from keykeeper.crypto.raw_params import RawParams
from keykeeper.crypto.registry import get_spec
from keykeeper.domain.keys import Key
from keykeeper.errors import FailedPrecondition, NotFound, PermissionDenied
from keykeeper.kmip.attributes_store import decode_object, encode_object, object_scope
from keykeeper.kmip.call import Call, KmipError, object_not_found
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    DigitalSignatureAlgorithm,
    HashingAlgorithm,
    MaskGenerator,
    PaddingMethod,
    UsageLimitsUnit,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.uids import ObjectId, parse_uid
from keykeeper.service.raw_crypto import RawCrypto

__all__ = [
    "Target",
    "bool_field",
    "byte_field",
    "data_field",
    "multi_part",
    "parse_params",
    "raw_crypto",
    "refuse_multi_part",
    "target",
]

_ATTRIBUTE = "Cryptographic Parameters"
# Integer fields of Cryptographic Parameters: tag -> (RawParams field, spec name).
_INT_FIELDS: dict[int, tuple[str, str]] = {
    Tag.IV_LENGTH: ("iv_length", "IV Length"),
    Tag.TAG_LENGTH: ("tag_length", "Tag Length"),
    Tag.FIXED_FIELD_LENGTH: ("fixed_field_length", "Fixed Field Length"),
    Tag.INVOCATION_FIELD_LENGTH: ("invocation_field_length", "Invocation Field Length"),
    Tag.COUNTER_LENGTH: ("counter_length", "Counter Length"),
    Tag.INITIAL_COUNTER_VALUE: ("initial_counter", "Initial Counter Value"),
    Tag.SALT_LENGTH: ("salt_length", "Salt Length"),
}
_USAGE_LIMITS = "Usage Limits"


def _enum(item: Item, cls: type[IntEnum]) -> str:
    if item.type is not ItemType.ENUMERATION or not isinstance(item.value, int):
        raise KmipError("Invalid_Field", f"{cls.__name__} must be an Enumeration")
    member = cls._value2member_map_.get(item.value)  # a dict read: the hot path
    if member is None:
        raise KmipError("Invalid_Field", f"unknown {cls.__name__} value {item.value:#x}")
    return str(member.name)


def _int(item: Item, what: str) -> int:
    if item.type is not ItemType.INTEGER or not isinstance(item.value, int) or isinstance(
            item.value, bool):
        raise KmipError("Invalid_Field", f"{what} must be an Integer")
    return item.value


def hash_name(enum_name: str) -> str:
    """``SHA_256`` -> ``SHA256``, ``SHA_3_256`` -> ``SHA3_256``; others unchanged."""
    if enum_name.startswith("SHA_3_"):
        return "SHA3_" + enum_name[6:]
    if enum_name.startswith("SHA_"):
        return "SHA" + enum_name[4:]
    return enum_name


def _algorithm(name: str) -> tuple[str, str | None]:
    """(algorithm, hash implied) of a Cryptographic Algorithm name."""
    if name.startswith("HMAC_SHA3_"):
        return "HMAC", "SHA3_" + name[10:]
    if name.startswith("HMAC_SHA"):
        return "HMAC", "SHA" + name[8:]
    if name == "EC":
        return "ECDSA", None
    if name == "CHACHA20POLY1305":
        return "CHACHA20_POLY1305", None
    return name, None


def _signature(name: str) -> tuple[str, str | None, str | None]:
    """(algorithm, padding, hash) of a Digital Signature Algorithm name."""
    if name == "RSASSA_PSS":
        return "RSA", "PSS", None
    if name.endswith("_WITH_RSA_ENCRYPTION"):
        return "RSA", "PKCS1_V1_5", hash_name(name[: -len("_WITH_RSA_ENCRYPTION")])
    if name.startswith("ECDSA_WITH_"):
        return "ECDSA", None, name[len("ECDSA_WITH_"):].replace("_", "")
    return name.split("_WITH_")[0], None, None


def parse_params(item: Item | None) -> RawParams:
    """The Cryptographic Parameters structure ``item`` (None: none given) as RawParams."""
    if item is None:
        return RawParams()
    if item.type is not ItemType.STRUCTURE:
        raise KmipError("Invalid_Field", "Cryptographic Parameters must be a Structure")
    f: dict[str, object] = {}
    implied_hash: str | None = None
    sig: tuple[str, str | None, str | None] | None = None
    for child in item.children:
        t = child.tag
        if t == Tag.BLOCK_CIPHER_MODE:
            f["mode"] = _enum(child, BlockCipherMode)
        elif t == Tag.PADDING_METHOD:
            f["padding"] = _enum(child, PaddingMethod)
        elif t == Tag.HASHING_ALGORITHM:
            f["hash"] = hash_name(_enum(child, HashingAlgorithm))
        elif t == Tag.KEY_ROLE_TYPE:
            f["key_role_type"] = child.value if isinstance(child.value, int) else None
        elif t == Tag.DIGITAL_SIGNATURE_ALGORITHM:
            name = _enum(child, DigitalSignatureAlgorithm)
            f["signature_algorithm"] = name
            sig = _signature(name)
        elif t == Tag.CRYPTOGRAPHIC_ALGORITHM:
            f["algorithm"], implied_hash = _algorithm(_enum(child, CryptographicAlgorithm))
        elif t == Tag.RANDOM_IV:
            if child.type is not ItemType.BOOLEAN:
                raise KmipError("Invalid_Field", "Random IV must be a Boolean")
            f["random_iv"] = bool(child.value)
        elif t in _INT_FIELDS:
            field, what = _INT_FIELDS[t]
            f[field] = _int(child, what)
        elif t == Tag.MASK_GENERATOR:
            f["mask_generator"] = _enum(child, MaskGenerator)
        elif t == Tag.MASK_GENERATOR_HASHING_ALGORITHM:
            f["mgf_hash"] = hash_name(_enum(child, HashingAlgorithm))
        elif t == Tag.P_SOURCE:
            if not isinstance(child.value, bytes):
                raise KmipError("Invalid_Field", "P Source must be a Byte String")
            f["label"] = child.value
        elif t == Tag.TRAILER_FIELD:
            f["trailer_field"] = _int(child, "Trailer Field")
    if implied_hash is not None:
        f.setdefault("hash", implied_hash)
    if sig is not None:
        for name, value in zip(("algorithm", "padding", "hash"), sig, strict=True):
            if value is not None:
                f.setdefault(name, value)
    return RawParams(**f)  # type: ignore[arg-type]


def _first_params(stored: list[tuple[int, Item | None]] | None) -> RawParams | None:
    if not stored or stored[0][1] is None:
        return None
    try:
        return parse_params(stored[0][1])
    except KmipError:  # a stored value that no longer parses: the request's own rule
        return None


def byte_field(payload: Item, tag: int, what: str) -> bytes | None:
    """A Byte String child of the payload, or None; Invalid_Field when of another type."""
    item = payload.find(tag)
    if item is None:
        return None
    if not isinstance(item.value, bytes):
        raise KmipError("Invalid_Field", f"{what} must be a Byte String")
    return item.value


def bool_field(payload: Item, tag: int) -> bool:
    item = payload.find(tag)
    return item is not None and item.value is True


class Target:
    """The object an operation runs on: its UID's parts and its key's metadata."""

    __slots__ = ("key", "oid", "stored")

    def __init__(self, oid: ObjectId, key: Key) -> None:
        self.oid = oid
        self.key = key
        self.stored = decode_object(key.labels, object_scope(oid.version, oid.public))

    @property
    def uid(self) -> str:
        return str(self.oid)

    def params(self, payload: Item) -> RawParams:
        """The request's Cryptographic Parameters over the object's stored ones."""
        own = parse_params(payload.find(Tag.CRYPTOGRAPHIC_PARAMETERS))
        return own.over(_first_params(self.stored.get(_ATTRIBUTE)))

    def _date(self, name: str) -> int | None:
        for _, item in self.stored.get(name, ()):
            if item is not None and isinstance(item.value, int):
                return item.value
        return None

    def consume(self, call: Call, amount: int, permission: str) -> None:
        """Take ``amount`` bytes (unit Byte) or one use (unit Object) from the object's
        Usage Limits (KMIP 2.1 §4.55), when it has one: the remaining Usage Limits Count
        is decremented in one transaction on the locked key (service/kmip_attributes.py,
        authorized as ``permission``) once the operation has succeeded, before its output
        is returned (a failed operation uses nothing). PermissionDenied when too little is
        left, and the output is withheld (as the profile test CS-BC-M-7 expects)."""
        if _USAGE_LIMITS not in self.stored:
            return
        store = call.services.kmip_attributes
        if store is None:
            raise KmipError("Operation_Not_Supported", "this server stores no KMIP attributes")
        scope = object_scope(self.oid.version, self.oid.public)

        def change(labels: Mapping[str, str]) -> Mapping[str, str]:
            stored = decode_object(labels, scope)
            instances = stored.get(_USAGE_LIMITS)
            if not instances:
                return labels
            index, limits = instances[0]
            if limits is None:
                return labels
            total, count, unit = (limits.find(t) for t in (
                Tag.USAGE_LIMITS_TOTAL, Tag.USAGE_LIMITS_COUNT, Tag.USAGE_LIMITS_UNIT))
            if total is None or not isinstance(total.value, int):
                return labels
            left = count.value if count is not None and isinstance(count.value, int) \
                else total.value
            n = amount if unit is not None and unit.value == UsageLimitsUnit.BYTE else 1
            if left < n:
                raise PermissionDenied("the object's Usage Limits are used up")
            new = [c for c in limits.children if c.tag != Tag.USAGE_LIMITS_COUNT]
            new.insert(1, Item(Tag.USAGE_LIMITS_COUNT, ItemType.LONG_INTEGER, left - n))
            stored[_USAGE_LIMITS] = [(index, Item.structure(Tag.USAGE_LIMITS, new)),
                                     *instances[1:]]
            return encode_object(labels, scope, stored)

        store.change(call.ctx, self.key.id, change, operation=permission)

    def check_dates(self, call: Call, *, protect: bool) -> None:
        """The object's Protect Stop Date (protect: Encrypt, Sign, MAC) or Process Start
        Date (process: Decrypt, Signature Verify, MAC Verify), KMIP 2.1 §4.31 and §4.27,
        stored by Register / Create / Add Attribute: Wrong_Key_Lifecycle_State outside."""
        now = call.services.deps.clock().timestamp()
        if protect:
            stop = self._date("Protect Stop Date")
            if stop is not None and now >= stop:
                raise FailedPrecondition("the object's Protect Stop Date has passed")
        else:
            start = self._date("Process Start Date")
            if start is not None and now < start:
                raise FailedPrecondition("the object's Process Start Date has not come")

    def refuse_public(self, what: str) -> None:
        """Decrypt, Sign and MAC need the private or secret key, not ``/public``."""
        if self.oid.public:
            raise KmipError("Incompatible_Cryptographic_Usage_Mask",
                            f"a public key cannot {what}")


def raw_crypto(call: Call) -> RawCrypto:
    service = call.services.raw_crypto
    if service is None:  # built by build_services; absent only in a partial test setup
        raise KmipError("Operation_Not_Supported", "this server has no raw crypto service")
    return service


def target(call: Call, payload: Item) -> Target:
    """The object the request's Unique Identifier (or the ID Placeholder) names, if the
    caller may see its key: Object_Not_Found otherwise, as kmip/objects.py ``resolve``
    answers. The operation's own authorization and the namespace's rate limit follow, once,
    in the service (service/raw_crypto.py); ``resolve`` would charge the rate limit a
    second time, so the key is read here through the same metadata cache, unauthorized
    for any operation but visibility."""
    uid = call.uid(payload, Tag.UNIQUE_IDENTIFIER)
    oid = parse_uid(uid)
    if oid is None:
        raise object_not_found()
    try:
        key = raw_crypto(call).key(call.ctx, oid.key_id)
    except NotFound:
        raise object_not_found() from None
    if key.version(oid.version) is None or (
            oid.public and not get_spec(key.algorithm).asymmetric):
        raise object_not_found()
    call.ctx.key_version = oid.version
    return Target(oid, key)


def refuse_multi_part(payload: Item) -> None:
    """Multi-part (streaming) operations -- a Correlation Value, or an Init Indicator or
    Final Indicator without the other (KMIP 2.1 §6.1.16) -- are not supported:
    Operation_Not_Supported. Both indicators true is one single-part call."""
    init = payload.find(Tag.INIT_INDICATOR)
    final = payload.find(Tag.FINAL_INDICATOR)
    if payload.find(Tag.CORRELATION_VALUE) is not None or (
            (init is not None and init.value is True) != (final is not None
                                                           and final.value is True)):
        raise KmipError("Operation_Not_Supported",
                        "multi-part (streaming) cryptographic operations are not supported")


def multi_part(payload: Item) -> tuple[bytes | None, bool] | None:
    """None for a single-part request; else (Correlation Value, final): the first part
    (Init Indicator, no Correlation Value: (None, False)), a middle part (a Correlation
    Value) or the last (a Correlation Value and the Final Indicator). Invalid_Field for
    an Init Indicator with a Correlation Value, or a Final Indicator without one."""
    init = bool_field(payload, Tag.INIT_INDICATOR)
    final = bool_field(payload, Tag.FINAL_INDICATOR)
    corr = byte_field(payload, Tag.CORRELATION_VALUE, "Correlation Value")
    if corr is None:
        if init == final:  # neither, or both: one single-part call
            return None
        if final:
            raise KmipError("Invalid_Field", "a Final Indicator needs the Correlation Value "
                            "of the first part")
        return None, False
    if init:
        raise KmipError("Invalid_Field", "an Init Indicator starts a stream: give no "
                        "Correlation Value with it")
    return corr, final


def data_field(payload: Item) -> bytes:
    """The request's Data (a Byte String): Invalid_Field when missing or of another type."""
    data = byte_field(payload, Tag.DATA, "Data")
    if data is None:
        raise KmipError("Invalid_Field", "the request has no Data")
    return data
