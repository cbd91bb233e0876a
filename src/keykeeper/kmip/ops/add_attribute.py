"""Add Attribute (KMIP 1.4 §4.13, KMIP 2.1 §6.1.4): a new attribute instance on one
object, stored in the key's ``kmip.*`` labels (kmip/attributes_edit.py has the rules).
1.x answers the Unique Identifier and the Attribute with its assigned Attribute Index;
2.x the Unique Identifier. Authorized as ``key.update``.
"""

from __future__ import annotations

from keykeeper.kmip.attributes import resolve_object
from keykeeper.kmip.attributes_edit import add_attribute, requested_change, response_attribute
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.ADD_ATTRIBUTE


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, Tag.UNIQUE_IDENTIFIER)
    change = requested_change(payload, Tag.NEW_ATTRIBUTE)
    name, _, value = change if change is not None else ("", None, None)
    if value is None:
        raise KmipError("Invalid_Field", "Add Attribute needs an attribute with a value")
    key, oid = resolve_object(call, uid, "key.update")
    index = add_attribute(call, key, oid, name, value)
    call.placeholder = str(oid)
    return [Item(int(Tag.UNIQUE_IDENTIFIER), ItemType.TEXT_STRING, str(oid)),
            *response_attribute(call, name, index, value)]
