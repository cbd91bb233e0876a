"""Get Attribute List (KMIP 1.4 §4.12, KMIP 2.1 §6.1.23): the names of an object's
attributes -- Attribute Name text strings in 1.x, Attribute References in 2.x -- each
once, custom attributes first. Authorized as ``key.get``.
"""

from __future__ import annotations

from keykeeper.kmip.attributes import object_values, resolve_object, supported
from keykeeper.kmip.attributes_catalogue import v2_reference
from keykeeper.kmip.call import Call
from keykeeper.kmip.certificate import certificate_values
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.GET_ATTRIBUTE_LIST


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, Tag.UNIQUE_IDENTIFIER)
    key, oid = resolve_object(call, uid)
    names: list[str] = []
    merged = certificate_values(call, key, oid,   # a Certificate's, read from its DER
                                object_values(call, key, oid))
    for name, _, _ in merged:
        if name not in names and supported(name, call.version):
            names.append(name)
    out = [Item(int(Tag.UNIQUE_IDENTIFIER), ItemType.TEXT_STRING, str(oid))]
    if call.version >= (2, 0):
        out.extend(v2_reference(n) for n in names)
    else:
        out.extend(Item(int(Tag.ATTRIBUTE_NAME), ItemType.TEXT_STRING, n) for n in names)
    call.placeholder = str(oid)
    return out
