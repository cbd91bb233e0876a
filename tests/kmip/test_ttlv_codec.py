"""Binary TTLV (KMIP 1.4 §9.1, KMIP 2.1 §9.1): the spec's examples byte for byte, round
trips of random trees, and strict refusal of malformed input (TtlvError and nothing else)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keykeeper.kmip.ttlv.codec import decode, encode, message_length
from keykeeper.kmip.ttlv.item import Item, ItemType, TtlvError
from tests.kmip.ttlv_strategies import trees

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "kmip"
EXAMPLES = VECTORS / "ttlv_examples_kmip_v1.4_s9.1.2.json"
T = 0x420020


def _example_item(tag: int, typ: str, value: Any) -> Item:
    kind = {"Integer": ItemType.INTEGER, "LongInteger": ItemType.LONG_INTEGER,
            "BigInteger": ItemType.BIG_INTEGER, "Enumeration": ItemType.ENUMERATION,
            "Boolean": ItemType.BOOLEAN, "TextString": ItemType.TEXT_STRING,
            "ByteString": ItemType.BYTE_STRING, "DateTime": ItemType.DATE_TIME,
            "Interval": ItemType.INTERVAL, "Structure": ItemType.STRUCTURE}[typ]
    if kind is ItemType.STRUCTURE:
        return Item.structure(tag, [_example_item(int(t, 16), ty, v) for t, ty, v in value])
    if kind is ItemType.BIG_INTEGER:
        return Item(tag, kind, int(value), 16)
    if kind is ItemType.BYTE_STRING:
        return Item(tag, kind, bytes.fromhex(value))
    return Item(tag, kind, value)


def _examples() -> list[Any]:
    examples: list[Any] = json.loads(EXAMPLES.read_text())["examples"]
    return examples


@pytest.mark.parametrize("example", _examples(), ids=lambda e: e["type"])
def test_spec_examples_both_directions(example: dict[str, Any]) -> None:
    item = _example_item(T, example["type"], example["value"])
    wire = bytes.fromhex(example["hex"])
    assert encode(item) == wire
    assert decode(wire) == item
    assert "".join(example["hex_spec"].replace("|", "").split()).lower() == example["hex"]


def test_every_spec_example_type_is_covered() -> None:
    assert len({e["type"] for e in _examples()}) == len(_examples()) == 10


def test_big_integer_width_keeps_leading_zero_bytes() -> None:
    item = Item(T, ItemType.BIG_INTEGER, 1, 24)
    wire = encode(item)
    assert len(wire) == 8 + 24 and wire[8:31] == bytes(23)
    assert decode(wire) == item
    assert encode(Item(T, ItemType.BIG_INTEGER, 1))[4:8] == b"\0\0\0\x08"
    assert encode(Item(T, ItemType.BIG_INTEGER, -1))[8:] == b"\xff" * 8
    assert encode(Item(T, ItemType.BIG_INTEGER, 1 << 63))[4:8] == b"\0\0\0\x10"  # sign bit
    with pytest.raises(TtlvError):
        encode(Item(T, ItemType.BIG_INTEGER, 1 << 63, 8))
    with pytest.raises(TtlvError):
        encode(Item(T, ItemType.BIG_INTEGER, 1, 12))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_round_trip(item: Item) -> None:
    wire = encode(item)
    assert len(wire) % 8 == 0
    assert decode(wire) == item
    assert encode(decode(wire)) == wire
    if item.type is ItemType.STRUCTURE:
        assert message_length(wire[:8]) == len(wire)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_only_ttlv_error(data: bytes) -> None:
    try:
        item = decode(data)
    except TtlvError:
        return
    assert encode(item) == data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(max_leaves=8), st.data())
def test_fuzz_mutated_messages_only_ttlv_error(item: Item, data: st.DataObject) -> None:
    wire = bytearray(encode(item))
    for _ in range(data.draw(st.integers(1, 4))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    try:
        decoded = decode(bytes(wire))
    except TtlvError:
        return
    assert encode(decoded) == bytes(wire)


def _message() -> bytes:
    return encode(Item.structure(0x420078, [
        Item.structure(0x420077, [Item(0x42000D, ItemType.INTEGER, 1),
                                  Item(0x420092, ItemType.DATE_TIME, 1_700_000_000)]),
        Item(0x420094, ItemType.TEXT_STRING, "héllo"),
        Item(0x4200C2, ItemType.BYTE_STRING, b"\x01\x02\x03"),
        Item(0x420008, ItemType.BOOLEAN, True),
        Item(0x420004, ItemType.BIG_INTEGER, 5),
    ]))


def test_truncated_at_every_offset() -> None:
    wire = _message()
    for cut in range(len(wire)):
        with pytest.raises(TtlvError):
            decode(wire[:cut])


def test_trailing_bytes() -> None:
    wire = _message()
    for extra in (b"\0", bytes(8), wire):
        with pytest.raises(TtlvError, match="trailing"):
            decode(wire + extra)
    leaf = encode(Item(T, ItemType.INTEGER, 1))
    with pytest.raises(TtlvError, match="trailing"):
        decode(leaf + leaf)


def _leaf(typ: int, length: int, value: bytes, tag: int = T) -> bytes:
    return struct.pack(">II", tag << 8 | typ, length) + value


@pytest.mark.parametrize(("wire", "why"), [
    (_leaf(0x02, 8, bytes(8)), "length 8, not 4"),  # Integer length != 4
    (_leaf(0x02, 4, b"\0\0\0\1\0\0\0\1"), "padding"),
    (_leaf(0x05, 3, bytes(8)), "not 4"),
    (_leaf(0x0A, 8, bytes(8)), "not 4"),
    (_leaf(0x03, 4, bytes(8)), "not 8"),
    (_leaf(0x09, 16, bytes(16)), "not 8"),
    (_leaf(0x0B, 7, bytes(8)), "not 8"),
    (_leaf(0x06, 8, b"\0" * 7 + b"\2"), "neither 0 nor 1"),
    (_leaf(0x06, 8, b"\1" + b"\0" * 7), "neither 0 nor 1"),
    (_leaf(0x06, 4, bytes(8)), "not 8"),
    (_leaf(0x04, 0, b""), "positive multiple of 8"),
    (_leaf(0x04, 4, bytes(8)), "positive multiple of 8"),
    (_leaf(0x07, 2, b"\xc3\x28" + bytes(6)), "UTF-8"),
    (_leaf(0x07, 1, b"a\0\0\0\0\0\0\1"), "padding"),
    (_leaf(0x08, 3, b"abc\0\0\0\0\xff"), "padding"),
    (_leaf(0x08, 9, b"abcdefgh"), "overruns"),
    (_leaf(0x00, 4, bytes(8)), "item type"),
    (_leaf(0x0C, 4, bytes(8)), "item type"),
    (_leaf(0xFF, 4, bytes(8)), "item type"),
    (_leaf(0x02, 4, bytes(8), tag=0x430020), "tag"),
    (_leaf(0x01, 4, bytes(8)), "multiple of 8"),
    (_leaf(0x01, 24, _leaf(0x02, 4, bytes(8))), "overruns"),
    (_leaf(0x01, 8, _leaf(0x02, 4, bytes(8)) + bytes(8)), "overruns"),
    (_leaf(0x01, 0xFFFFFFF8, b""), "overruns"),
    (b"", "fewer than 8"),
    (bytes(7), "fewer than 8"),
])
def test_malformed(wire: bytes, why: str) -> None:
    with pytest.raises(TtlvError, match=why):
        decode(wire)


def _nested(depth: int) -> Item:
    item = Item(T, ItemType.INTEGER, 1)
    for _ in range(depth):
        item = Item.structure(T, [item])
    return item


def test_depth_limit() -> None:
    assert decode(encode(_nested(32))) == _nested(32)
    with pytest.raises(TtlvError, match="deeper"):
        decode(encode(_nested(33)))
    assert decode(encode(_nested(4)), max_depth=4) == _nested(4)
    with pytest.raises(TtlvError, match="deeper"):
        decode(encode(_nested(5)), max_depth=4)
    # a hostile depth far beyond the Python stack is refused, never a RecursionError
    deep = b"".join(struct.pack(">II", T << 8 | 1, 8 * (5000 - i)) for i in range(5000))
    with pytest.raises(TtlvError):
        decode(deep, max_depth=10_000)


def test_size_limit() -> None:
    wire = encode(Item(T, ItemType.BYTE_STRING, bytes(1000)))
    assert decode(wire, max_size=len(wire)).value == bytes(1000)
    with pytest.raises(TtlvError, match="exceeds"):
        decode(wire, max_size=len(wire) - 1)
    with pytest.raises(TtlvError, match="exceeds"):
        message_length(_leaf(0x01, 1 << 24, b""))
    assert message_length(_leaf(0x01, 1 << 24, b""), max_size=(1 << 24) + 8) == (1 << 24) + 8


def test_message_length() -> None:
    wire = _message()
    assert message_length(wire[:8]) == len(wire)
    assert message_length(wire) == len(wire)
    for bad, why in ((wire[:7], "shorter"), (_leaf(0x02, 4, b""), "Structure"),
                     (_leaf(0x01, 12, b""), "multiple of 8"),
                     (_leaf(0x01, 8, b"", tag=0x000001), "tag")):
        with pytest.raises(TtlvError, match=why):
            message_length(bad)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    wire = _message()
    assert decode(bytearray(wire)) == decode(memoryview(wire)) == decode(wire)


def test_decoded_values_have_python_types() -> None:
    item = decode(_message())
    header, text, raw, flag, big = item.children
    assert isinstance(header.children[0].value, int)
    assert text.value == "héllo" and raw.value == b"\x01\x02\x03"
    assert flag.value is True and big.value == 5 and big.width == 8
    assert isinstance(item.tag, int) and item.type is ItemType.STRUCTURE


@pytest.mark.parametrize("bad", [
    Item(T, ItemType.INTEGER, 1 << 31),
    Item(T, ItemType.INTEGER, "1"),
    Item(T, ItemType.INTEGER, True),
    Item(T, ItemType.ENUMERATION, -1),
    Item(T, ItemType.INTERVAL, 1 << 32),
    Item(T, ItemType.LONG_INTEGER, 1 << 63),
    Item(T, ItemType.DATE_TIME, 1.5),  # type: ignore[arg-type]
    Item(T, ItemType.BOOLEAN, 2),
    Item(T, ItemType.TEXT_STRING, b"x"),
    Item(T, ItemType.TEXT_STRING, "\ud800"),
    Item(T, ItemType.BYTE_STRING, "x"),
    Item(T, ItemType.BIG_INTEGER, "1"),
    Item(T, ItemType.STRUCTURE, "x"),
    Item(T, 0x0C, 1),  # type: ignore[arg-type]
    Item(0x430000, ItemType.INTEGER, 1),
    Item(0x42000000, ItemType.INTEGER, 1),
    Item.structure(T, ["x"]),  # type: ignore[list-item]
])
def test_encode_refuses_bad_values(bad: Item) -> None:
    with pytest.raises(TtlvError):
        encode(bad)


def test_encode_accepts_int_item_type_and_extension_tags() -> None:
    item = Item(0x540001, 0x02, 7)  # type: ignore[arg-type]
    assert decode(encode(item)) == Item(0x540001, ItemType.INTEGER, 7)


def _pykmip_create_request() -> bytes:
    """A Create request written by PyKMIP (an independent implementation; tests only)."""
    from kmip.core import attributes, enums, objects, utils
    from kmip.core.factories.attributes import AttributeFactory
    from kmip.core.messages import contents, messages
    from kmip.core.messages.payloads import create

    kinds = enums.AttributeType
    factory = AttributeFactory()
    attrs = [
        factory.create_attribute(kinds.CRYPTOGRAPHIC_ALGORITHM, enums.CryptographicAlgorithm.AES),
        factory.create_attribute(kinds.CRYPTOGRAPHIC_LENGTH, 256),
        factory.create_attribute(kinds.CRYPTOGRAPHIC_USAGE_MASK, [
            enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]),
        factory.create_attribute(kinds.NAME, attributes.Name.create(
            "k1", enums.NameType.UNINTERPRETED_TEXT_STRING)),
    ]
    payload = create.CreateRequestPayload(
        object_type=enums.ObjectType.SYMMETRIC_KEY,
        template_attribute=objects.TemplateAttribute(attributes=attrs))
    batch = messages.RequestBatchItem(operation=contents.Operation(enums.Operation.CREATE),
                                      request_payload=payload)
    header = messages.RequestHeader(protocol_version=contents.ProtocolVersion(1, 4),
                                    batch_count=contents.BatchCount(1))
    stream = utils.BytearrayStream()
    messages.RequestMessage(request_header=header, batch_items=[batch]).write(
        stream, kmip_version=enums.KMIPVersion.KMIP_1_4)
    return bytes(stream.buffer)


def test_pykmip_cross_check() -> None:
    from kmip.core import enums, utils
    from kmip.core.messages import messages

    wire = _pykmip_create_request()
    item = decode(wire)
    assert encode(item) == wire
    assert message_length(wire[:8]) == len(wire)
    batch = item.children[1]
    assert batch.children[0] == Item(0x42005C, ItemType.ENUMERATION, 1)  # Operation Create
    parsed = messages.RequestMessage()
    parsed.read(utils.BytearrayStream(encode(item)), kmip_version=enums.KMIPVersion.KMIP_1_4)
    assert parsed.batch_items[0].operation.value == enums.Operation.CREATE
