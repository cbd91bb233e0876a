"""Discover Versions (KMIP 2.1 §6.1.19; KMIP 1.1 and later): the protocol versions the
server speaks, in its preference order (highest first), restricted to those the client
lists when it lists any (kmip/versions.py)."""

from __future__ import annotations

from keykeeper.kmip.call import Call, KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.versions import negotiate

__all__ = ["OPERATION", "handle"]

OPERATION = Operation.DISCOVER_VERSIONS


def _version(item: Item) -> tuple[int, int]:
    major, minor = item.find(Tag.PROTOCOL_VERSION_MAJOR), item.find(Tag.PROTOCOL_VERSION_MINOR)
    if major is None or minor is None or not isinstance(major.value, int) \
            or not isinstance(minor.value, int):
        raise KmipError("Invalid_Field", "a Protocol Version needs its major and minor number")
    return (major.value, minor.value)


def handle(call: Call, payload: Item) -> list[Item]:
    """Request: Protocol Version*; response: Protocol Version* (possibly none). Raises
    KmipError(Invalid_Field) for a Protocol Version without major or minor."""
    client = [_version(v) for v in payload.find_all(Tag.PROTOCOL_VERSION)]
    return [Item.structure(Tag.PROTOCOL_VERSION, [
        Item(Tag.PROTOCOL_VERSION_MAJOR, ItemType.INTEGER, major),
        Item(Tag.PROTOCOL_VERSION_MINOR, ItemType.INTEGER, minor)])
        for major, minor in negotiate(client)]
