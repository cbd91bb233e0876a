"""Building KMIP requests for the object operation tests and running the handlers
in-process, as the processor does (one Call per batch item), over the integration
tests' real node (tests/integration/conftest.py: SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keykeeper.domain.keys import Key
from keykeeper.errors import KeykeeperError
from keykeeper.kmip.call import Call, KmipSettings
from keykeeper.kmip.ops import OPERATIONS
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    KeyFormatType,
    NameType,
    ObjectType,
    Operation,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.service.context import Principal, RequestContext
from tests.integration.conftest import Node

A = CryptographicAlgorithm
U = CryptographicUsageMask
F = KeyFormatType


# -- building requests ----------------------------------------------------------------------
def text(tag: int, value: str) -> Item:
    return Item(int(tag), ItemType.TEXT_STRING, value)


def enum(tag: int, value: int) -> Item:
    return Item(int(tag), ItemType.ENUMERATION, int(value))


def integer(tag: int, value: int) -> Item:
    return Item(int(tag), ItemType.INTEGER, int(value))


def struct(tag: int, *children: Item) -> Item:
    return Item.structure(int(tag), list(children))


def name_value(name: str) -> Item:
    return struct(Tag.NAME, text(Tag.NAME_VALUE, name),
                  enum(Tag.NAME_TYPE, NameType.UNINTERPRETED_TEXT_STRING))


def attrs(version: tuple[int, int], container: int, **values: Item) -> Item:
    """A 1.x Template-Attribute-like container of Attribute structures, or a 2.x one of
    the value items themselves. Keys are spec names with '_' for ' '."""
    children = []
    for key, value in values.items():
        spec = key.replace("_", " ")
        if version >= (2, 0):
            children.append(value)
        else:
            children.append(struct(Tag.ATTRIBUTE, text(Tag.ATTRIBUTE_NAME, spec),
                                   Item(int(Tag.ATTRIBUTE_VALUE), value.type, value.value)))
    return struct(container, *children)


def template(version: tuple[int, int], **values: Item) -> Item:
    return attrs(version, Tag.ATTRIBUTES if version >= (2, 0) else Tag.TEMPLATE_ATTRIBUTE,
                 **values)


def alg(value: int) -> Item:
    return enum(Tag.CRYPTOGRAPHIC_ALGORITHM, value)


def length(bits: int) -> Item:
    return integer(Tag.CRYPTOGRAPHIC_LENGTH, bits)


def mask(value: int) -> Item:
    return integer(Tag.CRYPTOGRAPHIC_USAGE_MASK, value)


class Kmip:
    """Runs operation handlers as the processor does, one Call per batch item."""

    def __init__(self, node: Node, version: tuple[int, int] = (1, 4),
                 extractable: bool = True) -> None:
        self.node = node
        self.version = version
        self.settings = KmipSettings(namespace="default", extractable_default=extractable)

    def ctx(self) -> RequestContext:
        return RequestContext(interface="kmip", principal=Principal("root"))

    def __call__(self, operation: Operation, *payload: Item) -> Item:
        call = Call(self.node.services, self.ctx(), self.version, self.settings)
        out = OPERATIONS[int(operation)](call, Item.structure(int(Tag.REQUEST_PAYLOAD),
                                                              list(payload)))
        return Item.structure(int(Tag.RESPONSE_PAYLOAD), out)

    def create_aes(self, bits: int = 256, usage: int = int(U.ENCRYPT | U.DECRYPT),
                   **extra: Item) -> str:
        out = self(Operation.CREATE, enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
                   template(self.version, Cryptographic_Algorithm=alg(A.AES),
                            Cryptographic_Length=length(bits),
                            Cryptographic_Usage_Mask=mask(usage), **extra))
        return uid_of(out)

    def get(self, uid: str, fmt: int | None = None, *extra: Item) -> Item:
        payload = [text(Tag.UNIQUE_IDENTIFIER, uid)]
        if fmt is not None:
            payload.append(enum(Tag.KEY_FORMAT_TYPE, fmt))
        return self(Operation.GET, *payload, *extra)

    def revoke(self, uid: str, code: int, when: int | None = None) -> Item:
        payload = [text(Tag.UNIQUE_IDENTIFIER, uid),
                   struct(Tag.REVOCATION_REASON, enum(Tag.REVOCATION_REASON_CODE, code),
                          text(Tag.REVOCATION_MESSAGE, "test"))]
        if when is not None:
            payload.append(Item(int(Tag.COMPROMISE_OCCURRENCE_DATE), ItemType.DATE_TIME, when))
        return self(Operation.REVOKE, *payload)

    def key(self, uid: str) -> Key:
        return self.node.services.keys.get(self.ctx(), uid.split("/")[0])


def uid_of(payload: Item, tag: int = Tag.UNIQUE_IDENTIFIER) -> str:
    item = payload.find(int(tag))
    assert item is not None and isinstance(item.value, str)
    return item.value


def key_block(payload: Item) -> Item:
    for tag in (Tag.SYMMETRIC_KEY, Tag.PRIVATE_KEY, Tag.PUBLIC_KEY):
        managed = payload.find(int(tag))
        if managed is not None:
            block = managed.find(int(Tag.KEY_BLOCK))
            assert block is not None
            return block
    raise AssertionError("no managed object")


def material(payload: Item) -> Item:
    value = key_block(payload).find(int(Tag.KEY_VALUE))
    assert value is not None
    found = value.find(int(Tag.KEY_MATERIAL))
    assert found is not None
    return found


def walk(item: Item) -> list[Item]:
    """``item`` and every item below it, depth first."""
    out = [item]
    if item.type is ItemType.STRUCTURE and isinstance(item.value, list):
        for child in item.value:
            out += walk(child)
    return out


def reason_of(exc: KeykeeperError) -> str:
    return str(getattr(exc, "kmip_reason", ""))


@pytest.fixture(name="kmip", params=[(1, 4), (2, 1)], ids=["kmip1.4", "kmip2.1"])
def kmip_fixture(node: Node, request: pytest.FixtureRequest) -> Iterator[Kmip]:
    """The operations over a fresh in-process node, as KMIP 1.4 and 2.1 requests."""
    yield Kmip(node, request.param)


def pair(kmip: Kmip, algorithm: int, bits: int, private_mask: int,
         public_mask: int) -> tuple[str, str]:
    """Create Key Pair: (private UID, public UID)."""
    v2 = kmip.version >= (2, 0)
    out = kmip(Operation.CREATE_KEY_PAIR,
               attrs(kmip.version, Tag.COMMON_ATTRIBUTES if v2 else Tag.COMMON_TEMPLATE_ATTRIBUTE,
                     Cryptographic_Algorithm=alg(algorithm), Cryptographic_Length=length(bits)),
               attrs(kmip.version, Tag.PRIVATE_KEY_ATTRIBUTES if v2
                     else Tag.PRIVATE_KEY_TEMPLATE_ATTRIBUTE,
                     Cryptographic_Usage_Mask=mask(private_mask)),
               attrs(kmip.version, Tag.PUBLIC_KEY_ATTRIBUTES if v2
                     else Tag.PUBLIC_KEY_TEMPLATE_ATTRIBUTE,
                     Cryptographic_Usage_Mask=mask(public_mask)))
    return (uid_of(out, Tag.PRIVATE_KEY_UNIQUE_IDENTIFIER),
            uid_of(out, Tag.PUBLIC_KEY_UNIQUE_IDENTIFIER))


# -- one store: KMIP and REST over the same live server -------------------------------------
def live_call(server, operation: Operation, *payload: Item):  # type: ignore[no-untyped-def]
    """One KMIP 2.1 operation on ``server`` (a KmipServer): its BatchResult."""
    from keykeeper.kmip.messages import batch_item, parse_response, request_message
    response = parse_response(server.call(request_message(
        [batch_item(int(operation), list(payload))], version=(2, 1))))
    return response.items[0]
