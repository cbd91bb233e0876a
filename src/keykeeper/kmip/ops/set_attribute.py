"""Set Attribute (KMIP 2.1 §6.1.47): create or replace a single-instance attribute of an
object (New Attribute); a multi-instance one is refused with Multi_Valued_Attribute, a
read-only one with Attribute_Read_Only (kmip/attributes_edit.py). Answers the Unique
Identifier. Authorized as ``key.update``.
"""

from __future__ import annotations

from keykeeper.kmip.attributes import resolve_object
from keykeeper.kmip.attributes_edit import requested_change, set_attribute
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.SET_ATTRIBUTE


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, Tag.UNIQUE_IDENTIFIER)
    change = requested_change(payload, Tag.NEW_ATTRIBUTE)
    name, _, value = change if change is not None else ("", None, None)
    if value is None:
        raise KmipError("Invalid_Field", "Set Attribute needs a New Attribute")
    key, oid = resolve_object(call, uid, "key.update")
    set_attribute(call, key, oid, name, value)
    call.placeholder = str(oid)
    return [Item(int(Tag.UNIQUE_IDENTIFIER), ItemType.TEXT_STRING, str(oid))]
