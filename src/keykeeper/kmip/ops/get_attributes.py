"""Get Attributes (KMIP 1.4 §4.11, KMIP 2.1 §6.1.22): the requested attributes of one
object, or all of them when none is named.

1.x names attributes by Attribute Name (text) and answers ``Attribute`` structures
(Attribute Index when not 0); 2.x names them by Attribute Reference (the attribute's tag
as an Enumeration, or a Vendor Attribute Reference) and answers one ``Attributes``
structure. An attribute the object lacks, or the version does not define, is left out;
the answer keeps the request's order. Authorized as ``key.get``.
"""

from __future__ import annotations

from keykeeper.kmip.attributes import (
    material_digest,
    object_values,
    resolve_object,
    supported,
)
from keykeeper.kmip.attributes_catalogue import reference_name, to_v1, to_v2
from keykeeper.kmip.call import Call
from keykeeper.kmip.certificate import certificate_values, wants_der
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

OPERATION = Operation.GET_ATTRIBUTES


def requested_names(payload: Item) -> list[str]:
    """The attribute names a request lists (Attribute Name or Attribute Reference)."""
    names: list[str] = []
    for child in payload.children:
        if child.tag in (Tag.ATTRIBUTE_NAME, Tag.ATTRIBUTE_REFERENCE):
            name = reference_name(child)
            if name not in names:
                names.append(name)
    return names


def handle(call: Call, payload: Item) -> list[Item]:
    uid = call.uid(payload, Tag.UNIQUE_IDENTIFIER)
    key, oid = resolve_object(call, uid)
    names = requested_names(payload)
    merged = object_values(call, key, oid)
    if not names or wants_der(names):   # a Certificate's attributes read from its DER
        merged = certificate_values(call, key, oid, merged)
    values = [(n, i, v) for n, i, v in merged if supported(n, call.version)]
    if (not names or "Digest" in names) and not any(n == "Digest" for n, _, _ in values):
        digest = material_digest(call, key, oid)
        if digest is not None:
            values.append(("Digest", 0, digest))
    if names:
        rank = {n.lower(): r for r, n in enumerate(names)}
        values = sorted((x for x in values if x[0].lower() in rank),
                        key=lambda x: rank[x[0].lower()])
    out = [Item(int(Tag.UNIQUE_IDENTIFIER), ItemType.TEXT_STRING, str(oid))]
    if call.version >= (2, 0):
        out.append(Item.structure(int(Tag.ATTRIBUTES), [to_v2(n, v) for n, _, v in values]))
    else:
        out.extend(to_v1(n, v, i) for n, i, v in values)
    call.placeholder = str(oid)
    return out
