"""KMIP JSON TTLV (KMIP Additional Message Encodings §4.1, KMIP Profiles §5.5): value forms,
agreement with XML and binary over every conformance vector, and TtlvError for any malformed
input."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keykeeper.kmip.ttlv.codec import decode, encode
from keykeeper.kmip.ttlv.item import Item, ItemType, TtlvError
from keykeeper.kmip.ttlv.json import from_json, to_json
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.ttlv.xml import iter_xml_messages
from tests.kmip.ttlv_strategies import trees

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "kmip"
FILES = sorted(VECTORS.glob("v*/XML/*/*.xml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.parent.parent.name}/{p.name}")
def test_vector_messages_round_trip_through_json(path: Path) -> None:
    for message in iter_xml_messages(path.read_bytes()):
        assert from_json(to_json(message), parse_placeholders=True) == message


def test_spec_style_object() -> None:
    data = json.dumps({"tag": "RequestMessage", "value": [
        {"tag": "RequestHeader", "value": [
            {"tag": "ProtocolVersion", "value": [
                {"tag": "ProtocolVersionMajor", "type": "Integer", "value": 2},
                {"tag": "ProtocolVersionMinor", "type": "Integer", "value": 1}]},
            {"tag": "BatchCount", "type": "Integer", "value": 1}]},
        {"tag": "BatchItem", "value": [
            {"tag": "Operation", "type": "Enumeration", "value": "Query"},
            {"tag": "RequestPayload", "type": "Structure", "value": [
                {"tag": "QueryFunction", "type": "Enumeration", "value": "0x00000001"},
                {"tag": "CryptographicUsageMask", "type": "Integer",
                 "value": "Encrypt|Decrypt"},
                {"tag": "0x540001", "type": "LongInteger", "value": "0x0000000000000010"},
                {"tag": "Nonce", "type": "ByteString", "value": "00ff"},
                {"tag": "ActivationDate", "type": "DateTime",
                 "value": "2001-01-01T10:00:00+10:00"},
            ]}]}]})
    msg = from_json(data)
    payload = msg.children[1].children[1]
    assert msg.children[1].children[0] == Item(Tag.OPERATION, ItemType.ENUMERATION, 0x18)
    assert payload.children == [
        Item(Tag.QUERY_FUNCTION, ItemType.ENUMERATION, 1),
        Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, ItemType.INTEGER, 12),
        Item(0x540001, ItemType.LONG_INTEGER, 16),
        Item(Tag.NONCE, ItemType.BYTE_STRING, b"\x00\xff"),
        Item(Tag.ACTIVATION_DATE, ItemType.DATE_TIME, 978_307_200),
    ]
    out = json.loads(to_json(msg))
    assert out["tag"] == "RequestMessage" and "type" not in out
    values = {c["tag"]: c["value"] for c in out["value"][1]["value"][1]["value"]}
    assert values == {"QueryFunction": "QueryOperations", "CryptographicUsageMask":
                      "Encrypt|Decrypt", "0x540001": 16, "Nonce": "00ff",
                      "ActivationDate": "2001-01-01T00:00:00+00:00"}
    assert from_json(to_json(msg)) == msg


@pytest.mark.parametrize(("item", "value"), [
    (Item(Tag.USAGE_LIMITS_TOTAL, ItemType.LONG_INTEGER, 1 << 52), "0x0010000000000000"),
    (Item(Tag.USAGE_LIMITS_TOTAL, ItemType.LONG_INTEGER, -(1 << 52)), "0xFFF0000000000000"),
    (Item(Tag.USAGE_LIMITS_TOTAL, ItemType.LONG_INTEGER, (1 << 52) - 1), (1 << 52) - 1),
    (Item(Tag.PUBLIC_EXPONENT, ItemType.BIG_INTEGER, 65537, 16),
     "0x00000000000000000000000000010001"),
    (Item(Tag.PUBLIC_EXPONENT, ItemType.BIG_INTEGER, -2, 8), "0xFFFFFFFFFFFFFFFE"),
    (Item(Tag.OPAQUE_DATA_TYPE, ItemType.ENUMERATION, 0x80000001), "0x80000001"),
    (Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, ItemType.INTEGER, 0x10000001), "Sign|0x10000000"),
    (Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, ItemType.INTEGER, 0), "0x00000000"),
    (Item(Tag.BATCH_COUNT, ItemType.INTEGER, -5), -5),
    (Item(Tag.SENSITIVE, ItemType.BOOLEAN, True), True),
    (Item(Tag.LEASE_TIME, ItemType.INTERVAL, 3600), 3600),
    (Item(0x540009, ItemType.DATE_TIME_EXTENDED, 1), "1970-01-01T00:00:00.000001+00:00"),
    (Item(Tag.ACTIVATION_DATE, ItemType.DATE_TIME, -(1 << 62)), "0xC000000000000000"),
])
def test_value_forms(item: Item, value: object) -> None:
    wire = to_json(item)
    assert json.loads(wire)["value"] == value
    assert from_json(wire) == item


@pytest.mark.parametrize(("obj", "item"), [
    ({"tag": "BatchCount", "type": "Integer", "value": "0x00000010"},
     Item(Tag.BATCH_COUNT, ItemType.INTEGER, 16)),
    ({"tag": "BatchCount", "type": "Integer", "value": "-3"},
     Item(Tag.BATCH_COUNT, ItemType.INTEGER, -3)),
    ({"tag": "Operation", "type": "Enumeration", "value": 1},
     Item(Tag.OPERATION, ItemType.ENUMERATION, 1)),
    ({"tag": "PublicExponent", "type": "BigInteger", "value": 65537},
     Item(Tag.PUBLIC_EXPONENT, ItemType.BIG_INTEGER, 65537)),
    ({"tag": "Sensitive", "type": "Boolean", "value": "0x1"},
     Item(Tag.SENSITIVE, ItemType.BOOLEAN, True)),
    ({"tag": "ActivationDate", "type": "DateTime", "value": 6},
     Item(Tag.ACTIVATION_DATE, ItemType.DATE_TIME, 6)),
    ({"tag": "Attribute", "value": [
        {"tag": "AttributeName", "type": "TextString", "value": "Cryptographic Usage Mask"},
        {"tag": "AttributeValue", "type": "Integer", "value": "Sign|Verify"}]},
     Item.structure(Tag.ATTRIBUTE, [
         Item(Tag.ATTRIBUTE_NAME, ItemType.TEXT_STRING, "Cryptographic Usage Mask"),
         Item(Tag.ATTRIBUTE_VALUE, ItemType.INTEGER, 3)])),
])
def test_lenient_reading(obj: object, item: Item) -> None:
    assert from_json(json.dumps(obj)) == item


@pytest.mark.parametrize(("data", "why"), [
    (b"", "malformed JSON"),
    (b"{", "malformed JSON"),
    (b"\xff", "UTF-8"),
    (b"[]", "must be an object"),
    (b'{"tag": "BatchCount", "type": "Integer", "value": 1.0}', "integers"),
    (b'{"tag": "BatchCount", "type": "Integer", "value": NaN}', "integers"),
    (b'{"tag": "BatchCount", "type": "Integer", "value": 1, "value": 2}', "duplicate"),
    (b'{"tag": "BatchCount", "type": "Integer", "value": 1, "x": 2}', "unexpected key"),
    (b'{"tag": "BatchCount", "type": "Integer"}', "needs a value"),
    (b'{"type": "Integer", "value": 1}', "tag value must be a string"),
    (b'{"tag": "Nope", "type": "Integer", "value": 1}', "unknown tag"),
    (b'{"tag": "BatchCount", "type": "Int", "value": 1}', "item type"),
    (b'{"tag": "BatchCount", "type": "Integer", "value": true}', "number or a string"),
    (b'{"tag": "BatchCount", "type": "Integer", "value": 2147483648}', "out of range"),
    (b'{"tag": "Operation", "type": "Enumeration", "value": -1}', "out of range"),
    (b'{"tag": "Operation", "type": "Enumeration", "value": "Fly"}', "unknown Enumeration"),
    (b'{"tag": "Sensitive", "type": "Boolean", "value": 1}', "neither true"),
    (b'{"tag": "Nonce", "type": "ByteString", "value": "0"}', "hex"),
    (b'{"tag": "PublicExponent", "type": "BigInteger", "value": "ff"}', "0x hex"),
    (b'{"tag": "RequestPayload", "value": {}}', "array"),
    (b'{"tag": "RequestPayload", "value": [1]}', "must be an object"),
    (b'{"tag": "ActivationDate", "type": "DateTime", "value": "$NOW"}', "ISO 8601"),
])
def test_malformed(data: bytes, why: str) -> None:
    with pytest.raises(TtlvError, match=why):
        from_json(data)


def test_depth_and_size_limits() -> None:
    inner: dict[str, object] = {"tag": "BatchCount", "type": "Integer", "value": 1}
    for _ in range(40):
        inner = {"tag": "RequestPayload", "value": [inner]}
    data = json.dumps(inner).encode()
    with pytest.raises(TtlvError, match="deeper"):
        from_json(data)
    assert from_json(data, max_depth=40).tag == Tag.REQUEST_PAYLOAD
    hostile = b'{"tag": "RequestPayload", "value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(TtlvError):
        from_json(hostile)
    with pytest.raises(TtlvError, match="exceeds"):
        from_json(data, max_size=10)


def test_placeholders() -> None:
    data = b'{"tag": "ActivationDate", "type": "DateTime", "value": "$NOW+60"}'
    assert from_json(data, parse_placeholders=True) == Item(
        Tag.ACTIVATION_DATE, ItemType.DATE_TIME, "$NOW+60")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(st.sampled_from([int(t) for t in Tag]) | st.integers(0x540000, 0x54FFFF)))
def test_round_trip_random_trees(item: Item) -> None:
    try:
        wire = to_json(item)
    except TtlvError:  # only text with lone surrogates cannot be UTF-8
        with pytest.raises(TtlvError):
            encode(item)
        return
    assert from_json(wire, max_depth=64) == item
    assert decode(encode(from_json(wire, max_depth=64))) == item


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
        st.sampled_from(["tag", "type", "value", "x"]), kids, max_size=4),
    max_leaves=10).map(json.dumps))
def test_fuzz_only_ttlv_error(text: str) -> None:
    with contextlib.suppress(TtlvError):
        from_json(text)
