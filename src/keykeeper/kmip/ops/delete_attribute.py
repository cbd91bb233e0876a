"""Delete Attribute (KMIP 1.4 §4.15, KMIP 2.1 §6.1.16): delete one attribute instance of
an object -- 1.x names it by Attribute Name and Attribute Index (default 0), 2.x by
Current Attribute (its value) or Attribute Reference (the first instance). Read-only
attributes are refused (kmip/attributes_edit.py). 1.x answers the Unique Identifier and
the deleted Attribute; 2.x the Unique Identifier. Authorized as ``key.update``.
"""

from __future__ import annotations

from keykeeper.kmip.attributes import resolve_object
from keykeeper.kmip.attributes_catalogue import reference_name, spec_name
from keykeeper.kmip.attributes_edit import delete_attribute, requested_change, response_attribute
from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.DELETE_ATTRIBUTE


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, Tag.UNIQUE_IDENTIFIER)
    index: int | None = None
    value: Item | None = None
    named = payload.find(Tag.ATTRIBUTE_NAME)
    reference = payload.find(Tag.ATTRIBUTE_REFERENCE)
    if named is not None:  # 1.x
        name = reference_name(named)
        got = payload.find(Tag.ATTRIBUTE_INDEX)
        index = got.value if got is not None and isinstance(got.value, int) else 0
    elif reference is not None:
        name = reference_name(reference)
    else:
        change = requested_change(payload, Tag.CURRENT_ATTRIBUTE)
        if change is None:
            raise KmipError("Invalid_Field", "Delete Attribute names no attribute")
        name, index, value = change
    key, oid = resolve_object(call, uid, "key.update")
    at, old = delete_attribute(call, key, oid, spec_name(name), index, value)
    call.placeholder = str(oid)
    return [Item(int(Tag.UNIQUE_IDENTIFIER), ItemType.TEXT_STRING, str(oid)),
            *response_attribute(call, spec_name(name), at, old)]
