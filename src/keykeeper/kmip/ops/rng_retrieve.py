"""RNG Retrieve (KMIP 2.1 §6.1.42; KMIP 1.2 and later): Data Length bytes from the
server's CSPRNG, through the same service call (and ``random`` permission) as
``POST /v1/random``: 1 to 65,536 bytes."""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["OPERATION", "handle"]

OPERATION = Operation.RNG_RETRIEVE


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Data Length (Integer, bytes); response: Data (Byte String). Raises
    KmipError(Invalid_Field) without a Data Length, InvalidArgument (Invalid_Field) for
    a length out of range, PermissionDenied without ``random``."""
    length = payload.find(Tag.DATA_LENGTH)
    if length is None or isinstance(length.value, bool) or not isinstance(length.value, int):
        raise KmipError("Invalid_Field", "RNG Retrieve needs a Data Length (Integer)")
    data = call.services.crypto.random(call.ctx, length.value)
    return [Item(Tag.DATA, ItemType.BYTE_STRING, data)]
