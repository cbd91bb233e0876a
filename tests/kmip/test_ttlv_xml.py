"""KMIP XML encoding (KMIP Additional Message Encodings §6.1, KMIP Profiles §5.4): every
conformance vector file parses and round-trips, XML <-> binary agree, and hostile or
malformed XML raises TtlvError only."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keykeeper.kmip.ttlv.codec import decode, encode
from keykeeper.kmip.ttlv.item import Item, ItemType, TtlvError
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.ttlv.textual import placeholder
from keykeeper.kmip.ttlv.xml import from_xml, iter_xml_messages, to_xml
from tests.kmip.ttlv_strategies import leaves, trees

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "kmip"
FILES = sorted(VECTORS.glob("v*/XML/*/*.xml"))


def _has_placeholder(item: Item) -> bool:
    if item.type is ItemType.STRUCTURE:
        return any(_has_placeholder(child) for child in item.children)
    return placeholder(item) is not None


def test_vector_files_found() -> None:
    assert len(FILES) >= 160
    assert {p.parent.parent.parent.name for p in FILES} == {"v1.4", "v2.1"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.parent.parent.name}/{p.name}")
def test_vector_file_round_trip(path: Path) -> None:
    messages = iter_xml_messages(path.read_bytes())
    assert messages and {m.tag for m in messages} <= {Tag.REQUEST_MESSAGE, Tag.RESPONSE_MESSAGE}
    assert messages[0].tag == Tag.REQUEST_MESSAGE
    for message in messages:
        assert from_xml(to_xml(message), parse_placeholders=True) == message
        if not _has_placeholder(message):
            wire = encode(message)
            assert decode(wire) == message
            assert from_xml(to_xml(decode(wire))) == message


def _bind(item: Item) -> Item:
    """Placeholders replaced by fixed values of their declared type."""
    if item.type is ItemType.STRUCTURE:
        return Item.structure(item.tag, [_bind(child) for child in item.children])
    if placeholder(item) is None:
        return item
    dummy: dict[ItemType, int | str | bytes] = {
        ItemType.TEXT_STRING: "bound", ItemType.BYTE_STRING: b"\x00\x01",
        ItemType.DATE_TIME: 1_700_000_000}
    return Item(item.tag, item.type, dummy.get(item.type, 1))


def test_binary_cross_check_covers_every_message() -> None:
    plain = bound = 0
    for path in FILES:
        for message in iter_xml_messages(path.read_bytes()):
            plain += not _has_placeholder(message)
            message = _bind(message)
            assert not _has_placeholder(message)
            wire = encode(message)
            assert decode(wire) == message
            assert from_xml(to_xml(decode(wire))) == message
            bound += 1
    assert plain > 100 and bound > 1000


REQUEST_14 = """<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<RequestMessage>
  <RequestHeader>
    <ProtocolVersion>
      <ProtocolVersionMajor type="Integer" value="1"/>
      <ProtocolVersionMinor type="Integer" value="4"/>
    </ProtocolVersion>
    <BatchCount type="Integer" value="1"/>
  </RequestHeader>
  <BatchItem>
    <Operation type="Enumeration" value="Create"/>
    <RequestPayload>
      <ObjectType type="Enumeration" value="SymmetricKey"/>
      <TemplateAttribute>
        <Attribute>
          <AttributeName type="TextString" value="Cryptographic Algorithm"/>
          <AttributeValue type="Enumeration" value="AES"/>
        </Attribute>
        <Attribute>
          <AttributeName type="TextString" value="Cryptographic Usage Mask"/>
          <AttributeValue type="Integer" value="Encrypt Decrypt"/>
        </Attribute>
        <Attribute>
          <AttributeName type="TextString" value="Activation Date"/>
          <AttributeValue type="DateTime" value="2001-01-01T10:00:00+10:00"/>
        </Attribute>
      </TemplateAttribute>
    </RequestPayload>
  </BatchItem>
</RequestMessage>
"""


def test_values_by_name_and_attribute_context() -> None:
    msg = from_xml(REQUEST_14)
    batch = msg.find(Tag.BATCH_ITEM)
    assert batch is not None
    operation = batch.find(Tag.OPERATION)
    assert operation is not None and operation.value == 0x01
    payload = batch.find(Tag.REQUEST_PAYLOAD)
    assert payload is not None
    assert payload.find(Tag.OBJECT_TYPE) == Item(Tag.OBJECT_TYPE, ItemType.ENUMERATION, 2)
    template = payload.find(Tag.TEMPLATE_ATTRIBUTE)
    assert template is not None
    values = [a.children[1] for a in template.find_all(Tag.ATTRIBUTE)]
    assert values[0] == Item(Tag.ATTRIBUTE_VALUE, ItemType.ENUMERATION, 3)  # AES
    assert values[1] == Item(Tag.ATTRIBUTE_VALUE, ItemType.INTEGER, 4 | 8)
    assert values[2] == Item(Tag.ATTRIBUTE_VALUE, ItemType.DATE_TIME, 978_307_200)
    text = to_xml(msg)
    assert '<AttributeValue type="Enumeration" value="AES"/>' in text
    assert '<AttributeValue type="Integer" value="Encrypt Decrypt"/>' in text
    assert 'value="2001-01-01T00:00:00+00:00"' in text
    assert from_xml(text) == msg


@pytest.mark.parametrize(("xml", "item"), [
    ('<CryptographicUsageMask type="Integer" value="0x0000000C"/>',
     Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, ItemType.INTEGER, 12)),
    ('<CryptographicUsageMask type="Integer" value="12"/>',
     Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, ItemType.INTEGER, 12)),
    ('<CryptographicUsageMask type="Integer" value=" Sign  0x10000000 "/>',
     Item(Tag.CRYPTOGRAPHIC_USAGE_MASK, ItemType.INTEGER, 0x10000001)),
    ('<OpaqueDataType type="Enumeration" value="0x80123456"/>',
     Item(Tag.OPAQUE_DATA_TYPE, ItemType.ENUMERATION, 0x80123456)),
    ('<AttributeReference type="Enumeration" value="UniqueIdentifier"/>',
     Item(Tag.ATTRIBUTE_REFERENCE, ItemType.ENUMERATION, 0x420094)),
    ('<PublicExponent type="BigInteger" value="0000000000010001"/>',
     Item(Tag.PUBLIC_EXPONENT, ItemType.BIG_INTEGER, 65537, 8)),
    ('<PublicExponent type="BigInteger" value="ff"/>',
     Item(Tag.PUBLIC_EXPONENT, ItemType.BIG_INTEGER, -1, 8)),
    ('<UsageLimitsTotal type="LongInteger" value="-16"/>',
     Item(Tag.USAGE_LIMITS_TOTAL, ItemType.LONG_INTEGER, -16)),
    ('<LeaseTime type="Interval" value="3600"/>',
     Item(Tag.LEASE_TIME, ItemType.INTERVAL, 3600)),
    ('<Sensitive type="Boolean" value="false"/>',
     Item(Tag.SENSITIVE, ItemType.BOOLEAN, False)),
    ('<Data type="ByteString" value="00FFab"/>',
     Item(Tag.DATA, ItemType.BYTE_STRING, b"\x00\xff\xab")),
    ('<Data type="ByteString" value=""/>', Item(Tag.DATA, ItemType.BYTE_STRING, b"")),
    ('<ActivationDate type="DateTime" value="1970-01-01T00:00:06Z"/>',
     Item(Tag.ACTIVATION_DATE, ItemType.DATE_TIME, 6)),
    ('<ActivationDate type="DateTime" value="0x0000000047DA67F8"/>',
     Item(Tag.ACTIVATION_DATE, ItemType.DATE_TIME, 1205495800)),
    ('<TTLV tag="0x540001" type="TextString" value="a&amp;b&#10;c"/>',
     Item(0x540001, ItemType.TEXT_STRING, "a&b\nc")),
    ('<TTLV tag="0x540002"><Data type="ByteString" value="01"/></TTLV>',
     Item.structure(0x540002, [Item(Tag.DATA, ItemType.BYTE_STRING, b"\x01")])),
    ("<RequestPayload/>", Item.structure(Tag.REQUEST_PAYLOAD)),
])
def test_value_forms(xml: str, item: Item) -> None:
    assert from_xml(xml) == item
    assert from_xml(to_xml(item)) == item


def test_date_time_extended() -> None:
    item = Item(0x540003, ItemType.DATE_TIME_EXTENDED, 1_205_495_800_123_456)
    text = to_xml(item)
    assert 'value="2008-03-14T11:56:40.123456+00:00"' in text
    assert from_xml(text) == item


def test_placeholders_kept_only_when_asked() -> None:
    xml = ('<BatchItem><UniqueIdentifier type="TextString" value="$UNIQUE_IDENTIFIER_3"/>'
           '<TimeStamp type="DateTime" value="$NOW-3600"/>'
           '<Data type="ByteString" value="$DATA_0"/></BatchItem>')
    item = from_xml(xml, parse_placeholders=True)
    _uid, stamp, _data = item.children
    assert stamp == Item(Tag.TIME_STAMP, ItemType.DATE_TIME, "$NOW-3600")
    assert [placeholder(c) for c in item.children] == [
        "$UNIQUE_IDENTIFIER_3", "$NOW-3600", "$DATA_0"]
    assert placeholder(Item(Tag.NAME_VALUE, ItemType.TEXT_STRING, "plain")) is None
    assert from_xml(to_xml(item), parse_placeholders=True) == item
    with pytest.raises(TtlvError):
        encode(stamp)  # unbound placeholders never reach the wire
    with pytest.raises(TtlvError, match="ISO 8601"):
        from_xml(xml)
    assert from_xml(xml.replace("$NOW-3600", "0x01").replace("$DATA_0", "01")).children[0] \
        == Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, "$UNIQUE_IDENTIFIER_3")


def test_iter_xml_messages_single_root_and_attributes() -> None:
    assert iter_xml_messages(REQUEST_14) == [from_xml(REQUEST_14)]
    with pytest.raises(TtlvError):
        iter_xml_messages('<KMIP x="1"><RequestMessage/></KMIP>')


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>
<RequestMessage><TTLV tag="0x540001" type="TextString" value="&lol2;"/></RequestMessage>"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<NameValue type="TextString" value="&x;"/>"""


@pytest.mark.parametrize(("xml", "why"), [
    (BILLION_LAUGHS, "DTD"),
    (XXE, "DTD"),
    ('<!DOCTYPE r SYSTEM "http://127.0.0.1:1/x.dtd"><RequestMessage/>', "DTD"),
    ('<NameValue type="TextString" value="&undefined;"/>', "malformed"),
    ("<RequestMessage>", "malformed"),
    ("", "malformed"),
    ("<RequestMessage/><RequestMessage/>", "malformed"),
    ("<RequestMessage>text</RequestMessage>", "text content"),
    ("<NoSuchTag/>", "unknown tag"),
    ('<TTLV tag="0x430001"/>', "unknown tag"),
    ('<TTLV type="Integer" value="1"/>', "unknown tag"),
    ('<BatchCount type="Integer" value="1" extra="x"/>', "unexpected XML attribute"),
    ('<BatchCount type="Int" value="1"/>', "item type"),
    ('<BatchCount type="Integer"/>', "no value"),
    ('<BatchCount type="Integer" value="1"><BatchCount type="Integer" value="1"/></BatchCount>',
     "child elements"),
    ('<RequestPayload value="1"/>', "value attribute"),
    ('<BatchCount type="Integer" value="2147483648"/>', "out of range"),
    ('<BatchCount type="Integer" value="1.5"/>', "neither decimal"),
    ('<BatchCount type="Integer" value="\u0661"/>', "neither decimal"),  # Arabic-Indic 1
    ('<BatchCount type="Integer" value="0x100000000"/>', "wider"),
    ('<CryptographicUsageMask type="Integer" value="Encrypt Fly"/>', "unknown mask"),
    ('<Operation type="Enumeration" value="Fly"/>', "unknown Enumeration"),
    ('<Operation type="Enumeration" value="-1"/>', "out of range"),
    ('<Sensitive type="Boolean" value="yes"/>', "neither true"),
    ('<Data type="ByteString" value="abc"/>', "hex"),
    ('<Data type="ByteString" value="zz"/>', "hex"),
    ('<Data type="ByteString" value="01 02"/>', "hex"),
    ('<PublicExponent type="BigInteger" value=""/>', "hex"),
    ('<ActivationDate type="DateTime" value="yesterday"/>', "ISO 8601"),
    ('<ActivationDate type="DateTime" value="2001-01-01T00:00:00.5Z"/>', "fraction"),
    ('<LeaseTime type="Interval" value="-1"/>', "out of range"),
    ('<UniqueIdentifier type="TextString" value="$NOW"/>'.replace("TextString", "DateTime"),
     "ISO 8601"),
])
def test_malformed(xml: str, why: str) -> None:
    with pytest.raises(TtlvError, match=why):
        from_xml(xml)


def test_depth_and_size_limits() -> None:
    deep = "<RequestPayload>" * 40 + "</RequestPayload>" * 40
    with pytest.raises(TtlvError, match="deeper"):
        from_xml(deep)
    assert from_xml(deep, max_depth=40).tag == Tag.REQUEST_PAYLOAD
    hostile = "<RequestPayload>" * 200_000 + "</RequestPayload>" * 200_000
    with pytest.raises(TtlvError, match="deeper"):
        from_xml(hostile, max_size=len(hostile))
    with pytest.raises(TtlvError, match="exceeds"):
        from_xml(REQUEST_14, max_size=100)


@pytest.mark.parametrize("bad", [
    Item(Tag.NAME_VALUE, ItemType.TEXT_STRING, "nul\x00"),
    Item(Tag.NAME_VALUE, ItemType.TEXT_STRING, "\ud800"),
    Item(Tag.BATCH_COUNT, ItemType.INTEGER, "one"),
    Item(Tag.BATCH_COUNT, ItemType.INTEGER, b"1"),
    Item(Tag.PUBLIC_EXPONENT, ItemType.BIG_INTEGER, 1 << 70, 8),
    Item(Tag.BATCH_COUNT, ItemType.INTEGER, [])
])
def test_to_xml_refuses(bad: Item) -> None:
    with pytest.raises(TtlvError):
        to_xml(bad)


_XML_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xD7FF)
                    | st.sampled_from("\t\n\r"), max_size=30)
_KNOWN_TAGS = st.sampled_from([int(t) for t in Tag])
_TAGS = _KNOWN_TAGS | st.integers(0x540000, 0x54FFFF)


def _xml_safe(item: Item) -> Item:
    if item.type is ItemType.STRUCTURE:
        return Item.structure(item.tag, [_xml_safe(c) for c in item.children])
    if item.type is ItemType.TEXT_STRING:
        return Item(item.tag, item.type, "".join(
            c for c in str(item.value) if c in "\t\n\r" or 0x20 <= ord(c) < 0xD800
            or 0xE000 <= ord(c) < 0xFFFE or ord(c) > 0xFFFF))
    return item


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(_TAGS))
def test_round_trip_random_trees(item: Item) -> None:
    item = _xml_safe(item)
    assert from_xml(to_xml(item), max_depth=64) == item
    assert decode(encode(item)) == item


@settings(max_examples=200, deadline=None)
@given(leaves(_KNOWN_TAGS), _XML_TEXT)
def test_round_trip_known_tags(item: Item, name: str) -> None:
    item = _xml_safe(item)
    attr = Item.structure(Tag.ATTRIBUTE, [Item(Tag.ATTRIBUTE_NAME, ItemType.TEXT_STRING, name),
                                          Item(Tag.ATTRIBUTE_VALUE, item.type, item.value,
                                               item.width)])
    for candidate in (item, attr):
        assert from_xml(to_xml(candidate)) == candidate


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.sampled_from([
    "<RequestMessage>", '<TTLV tag="0x540001"/>', '<Data type="ByteString" value="0"/>']))
def test_fuzz_only_ttlv_error(text: str) -> None:
    with contextlib.suppress(TtlvError):
        from_xml(text)
