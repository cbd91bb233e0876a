"""Query (KMIP 2.1 §6.1.37): what this server offers. Query Functions answered:
Query Operations (the operations of the dispatch table, kmip/ops/__init__.py), Query
Objects (the object types keykeeper serves: Symmetric Key, Public Key, Private Key,
Secret Data, Opaque Object) and
Query Server Information (Vendor Identification ``keykeeper <version>`` and an empty
Server Information). Other functions add nothing (the specification lets a server omit
what it does not support). Operations and object types newer than the request's version
are dropped from the answer by the processor's version filter."""

from __future__ import annotations

from keykeeper import __version__
from keykeeper.kmip.call import Call
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import ObjectType, Operation, QueryFunction
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["OBJECT_TYPES", "OPERATION", "VENDOR", "handle"]

OPERATION = Operation.QUERY
VENDOR = f"keykeeper {__version__}"
OBJECT_TYPES = (ObjectType.SYMMETRIC_KEY, ObjectType.PUBLIC_KEY, ObjectType.PRIVATE_KEY,
                ObjectType.SECRET_DATA, ObjectType.OPAQUE_OBJECT, ObjectType.CERTIFICATE)


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Query Function*; response: Operation*, Object Type*, Vendor
    Identification, Server Information (in that order, each only when asked for)."""
    from keykeeper.kmip.ops import OPERATIONS  # the table lists this module

    asked = {f.value for f in payload.find_all(Tag.QUERY_FUNCTION)}
    out: list[Item] = []
    if QueryFunction.QUERY_OPERATIONS in asked:
        out += [Item(Tag.OPERATION, ItemType.ENUMERATION, op) for op in sorted(OPERATIONS)]
    if QueryFunction.QUERY_OBJECTS in asked:
        out += [Item(Tag.OBJECT_TYPE, ItemType.ENUMERATION, int(t)) for t in OBJECT_TYPES]
    if QueryFunction.QUERY_SERVER_INFORMATION in asked:
        out += [Item(Tag.VENDOR_IDENTIFICATION, ItemType.TEXT_STRING, VENDOR),
                Item.structure(Tag.SERVER_INFORMATION)]
    return out
