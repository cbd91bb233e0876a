"""Modify Attribute (KMIP 1.4 §4.14, KMIP 2.1 §6.1.32): replace one attribute instance
of an object -- 1.x names it by Attribute Index (default 0), 2.x by Current Attribute
(default: the first instance) -- with the New Attribute's value. Activation and
Deactivation Date change the key's lifecycle dates (kmip/attributes_edit.py).
1.x answers the Unique Identifier and the modified Attribute; 2.x the Unique Identifier.
Authorized as ``key.update``.
"""

from __future__ import annotations

from keykeeper.kmip.attributes import resolve_object
from keykeeper.kmip.attributes_edit import (
    modify_attribute,
    requested_change,
    response_attribute,
)
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.MODIFY_ATTRIBUTE


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, Tag.UNIQUE_IDENTIFIER)
    change = requested_change(payload, Tag.NEW_ATTRIBUTE)
    name, index, value = change if change is not None else ("", None, None)
    if value is None:
        raise KmipError("Invalid_Field", "Modify Attribute needs an attribute with a value")
    current = requested_change(payload, Tag.CURRENT_ATTRIBUTE) \
        if payload.find(Tag.CURRENT_ATTRIBUTE) is not None else None
    if current is not None and current[0] != name:
        raise KmipError("Invalid_Field", "Current and New Attribute name different attributes")
    key, oid = resolve_object(call, uid, "key.update")
    index = modify_attribute(call, key, oid, name, index,
                             None if current is None else current[2], value)
    call.placeholder = str(oid)
    return [Item(int(Tag.UNIQUE_IDENTIFIER), ItemType.TEXT_STRING, str(oid)),
            *response_attribute(call, name, index, value)]
