"""Get Usage Allocation (KMIP 1.4 §4.12, KMIP 2.1 §6.1.33): reserve a number of protect
operations of the object's version against its usage limit (the key's own, or the
algorithm's: AES-GCM's 2^32, NIST SP 800-38D §8.3); they count as done
(service/kmip_key_use.py ``allocate``). Invalid_Field for an object without a usage
limit; Wrong_Key_Lifecycle_State when fewer uses are left or the object cannot protect.
Request: Unique Identifier, Usage Limits Count. Response: Unique Identifier."""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.objects import kmip_keys, resolve, text_item
from keykeeper.kmip.ttlv import Item
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.GET_USAGE_ALLOCATION


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, int(Tag.UNIQUE_IDENTIFIER))
    obj = resolve(call, uid, "key.get")
    call.placeholder = obj.uid
    count = payload.find(int(Tag.USAGE_LIMITS_COUNT))
    if count is None or isinstance(count.value, bool) or not isinstance(count.value, int):
        raise KmipError("Invalid_Field", "Usage Limits Count is required")
    if obj.public:
        raise KmipError("Invalid_Field", "a public key has no usage allocation here")
    kmip_keys(call).allocate(call.ctx, obj.key.id, obj.version.version, count.value)
    return [text_item(int(Tag.UNIQUE_IDENTIFIER), obj.uid)]
