"""Check (KMIP 1.4 §4.10, KMIP 2.1 §6.1.7): whether the object could be used as the client
describes, without using it. Cryptographic Usage Mask: every bit asked must be in the
object's mask (Incompatible_Cryptographic_Usage_Mask); protecting bits (Encrypt, Sign,
Wrap Key, MAC Generate, ...) need an active object, processing bits an active,
deactivated or compromised one (Wrong_Key_Lifecycle_State). Usage Limits Count: at most
the uses left on the version (Permission_Denied). Lease Time: at most the object's Lease
Time, the longest lease the server grants (KEYKEEPER_KMIP_LEASE_TIME; KMIP 2.1 §6.1.7:
a longer one is refused, Permission_Denied); an object without one (setting 0) takes any.
The Lease Time asked must be an Interval (KMIP 2.1 §4.25), else Invalid_Field.
The mask and the Lease Time are the object's attributes as Get Attributes reports them
(attributes.py ``object_values``); a Certificate's attributes read from its DER
(certificate.py) are none of them, so they do not change a Check's answer.
Request: Unique Identifier, Usage Limits Count, Cryptographic Usage Mask, Lease Time.
Response: Unique Identifier."""

from __future__ import annotations

from keykeeper.domain.lifecycle import usage_limit
from keykeeper.kmip.attributes import object_values
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.objects import resolve, text_item
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import CryptographicUsageMask, Operation, State
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.CHECK

M = CryptographicUsageMask
_PROTECT = int(M.ENCRYPT | M.SIGN | M.WRAP_KEY | M.MAC_GENERATE | M.DERIVE_KEY
               | M.KEY_AGREEMENT | M.TRANSLATE_ENCRYPT | M.TRANSLATE_WRAP)
_PROCESS_STATES = (State.ACTIVE, State.DEACTIVATED, State.COMPROMISED)


def _int(payload: Item, tag: int, kind: ItemType | None = None) -> int | None:
    """The integer value of field ``tag`` (of type ``kind`` when given), or None when
    absent. Raises KmipError(Invalid_Field) for another type."""
    item = payload.find(tag)
    if item is None:
        return None
    if isinstance(item.value, bool) or not isinstance(item.value, int) \
            or (kind is not None and item.type is not kind):
        raise KmipError("Invalid_Field", "a Check field has the wrong type")
    return item.value


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, int(Tag.UNIQUE_IDENTIFIER))
    obj = resolve(call, uid, "key.get")
    call.placeholder = obj.uid
    mask = _int(payload, int(Tag.CRYPTOGRAPHIC_USAGE_MASK))
    count = _int(payload, int(Tag.USAGE_LIMITS_COUNT))
    lease = _int(payload, int(Tag.LEASE_TIME), ItemType.INTERVAL)
    # The object's attributes as Get Attributes reports them (no Activation Date needed).
    attrs = {} if mask is None and lease is None else {
        name: v.value for name, _, v in object_values(call, obj.key, obj.oid, activation=False)
        if isinstance(v.value, int) and not isinstance(v.value, bool)}
    if mask is not None:
        have = attrs.get("Cryptographic Usage Mask", 0)
        if mask & ~have:
            raise KmipError("Incompatible_Cryptographic_Usage_Mask",
                            "the object's usage mask does not allow this use")
        wanted = (State.ACTIVE,) if mask & _PROTECT else _PROCESS_STATES
        if obj.state not in wanted:
            raise KmipError("Wrong_Key_Lifecycle_State",
                            "the object's state does not allow this use")
    if count is not None:
        limit = usage_limit(obj.key)
        left = None if limit is None else max(limit - obj.version.protect_count, 0)
        if count < 0 or (left is not None and count > left):
            raise KmipError("Permission_Denied", "the object has fewer uses left")
    if lease is not None:
        granted = attrs.get("Lease Time")
        if granted is not None and lease > granted:   # an Interval is never negative
            raise KmipError("Permission_Denied",
                            "the lease asked is longer than the object's Lease Time")
    return [text_item(int(Tag.UNIQUE_IDENTIFIER), obj.uid)]
