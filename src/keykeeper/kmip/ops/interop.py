"""Interop (KMIP 2.0 and later; KMIP 2.1 §6.1 "Interop"): a test harness tells the server
that an interoperability test case begins, ends or is reset (Interop Function Begin, End or
Reset, and the test case's Interop Identifier, e.g. "BL-M-1-21").

keykeeper keeps no per-test-case state: the operation checks its request and answers
Success with an empty Response Payload. It changes nothing, so it needs no permission
beyond an authenticated caller; like every batch item it leaves one audit record
(``kmip.interop``), which is where the identifier can be found (the request is not echoed).
"""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import InteropFunction, Operation
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["OPERATION", "handle"]

OPERATION = Operation.INTEROP

_MAX_IDENTIFIER = 256  # characters; the test-case names are short


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Interop Function (Enumeration Begin/End/Reset) and Interop Identifier
    (Text String, 1 to 256 characters); response: no children. Raises
    KmipError(Invalid_Field) when either is missing, of the wrong type or out of range."""
    function = payload.find(Tag.INTEROP_FUNCTION)
    if function is None or function.type is not ItemType.ENUMERATION \
            or function.value not in {int(f) for f in InteropFunction}:
        raise KmipError("Invalid_Field",
                        "Interop needs an Interop Function (Begin, End or Reset)")
    identifier = payload.find(Tag.INTEROP_IDENTIFIER)
    if identifier is None or identifier.type is not ItemType.TEXT_STRING \
            or not isinstance(identifier.value, str) \
            or not 0 < len(identifier.value) <= _MAX_IDENTIFIER:
        raise KmipError("Invalid_Field", "Interop needs an Interop Identifier (Text String "
                        f"of 1 to {_MAX_IDENTIFIER} characters)")
    return []
