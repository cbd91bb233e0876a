"""Log (KMIP 2.0 and later; KMIP 2.1 §6.1 "Log"): the client asks the server to record a
Log Message. keykeeper records it in the audit trail, as an event of the calling request
(operation ``kmip.log``, the caller's principal, ``detail`` = the message), beside the
batch item's own ``kmip.log`` record.

The message is the client's text, kept as given but for control characters (replaced by
U+FFFD, so a message cannot forge lines) and at most 1,024 characters (longer ones are
cut and end with "..."). Clients must not log secrets: keykeeper cannot tell them apart.
"""

from __future__ import annotations

import unicodedata

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["MAX_MESSAGE", "OPERATION", "clean_message", "handle"]

OPERATION = Operation.LOG

MAX_MESSAGE = 1024  # characters recorded


def clean_message(text: str) -> str:
    """``text`` with control characters (Unicode category C*: line breaks, escapes,
    format characters) replaced by U+FFFD, cut to MAX_MESSAGE characters."""
    out = "".join("\ufffd" if unicodedata.category(c).startswith("C") else c for c in text)
    return out if len(out) <= MAX_MESSAGE else out[:MAX_MESSAGE - 3] + "..."


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Log Message (Text String, not empty); response: no children. Raises
    KmipError(Invalid_Field) without one."""
    message = payload.find(Tag.LOG_MESSAGE)
    if message is None or message.type is not ItemType.TEXT_STRING \
            or not isinstance(message.value, str) or not message.value:
        raise KmipError("Invalid_Field", "Log needs a Log Message (a non-empty Text String)")
    call.services.audit.note("kmip.log", detail=clean_message(message.value), ctx=call.ctx)
    return []
