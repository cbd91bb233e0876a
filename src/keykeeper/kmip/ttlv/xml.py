"""KMIP XML encoding (KMIP Additional Message Encodings v1.0 §6.1; KMIP Profiles v2.0 §5.4).

One element per item: the element name is the tag name (tags.tag_name), or ``TTLV`` with a
``tag="0x54xxxx"`` attribute for a tag without a name. ``type`` names the item type (absent
for a Structure); ``value`` holds the value of anything but a Structure, whose children are
child elements::

    <RequestMessage>
      <RequestHeader> ... </RequestHeader>
      <BatchItem>
        <Operation type="Enumeration" value="Create"/>
        <CryptographicUsageMask type="Integer" value="Encrypt Decrypt"/>
        <KeyMaterial type="ByteString" value="0123abcd"/>
        <ActivationDate type="DateTime" value="2001-01-01T10:00:00+10:00"/>

Values: Integer decimal (or 0x hex), for a mask tag bit names separated by spaces;
Long Integer and Interval decimal; Big Integer hex digits (their count sets the width);
Enumeration by name or ``0x`` + 8 hex digits; Boolean ``true``/``false``; Byte String hex;
Date-Time ISO 8601 (see textual.py). A KMIP 1.x Attribute Value takes its enumeration and
mask names from the sibling Attribute Name.

Conformance test files (KMIP Profiles test cases) hold a ``<KMIP>`` root with comments and
RequestMessage/ResponseMessage siblings: :func:`iter_xml_messages`. Their placeholders
(``$NOW``, ``$UNIQUE_IDENTIFIER_0``, ``$IV_COUNTER_NONCE``, ...) are kept with
``parse_placeholders=True``: the item has its declared type and the placeholder text as its
str value (textual.placeholder finds them).

Untrusted input: parsed with expat; a DTD, entity declaration or external entity is refused
(no entity expansion can happen), nesting is bounded by ``max_depth`` and the input by
``max_size``. Every malformed input raises TtlvError.
"""

from __future__ import annotations

import re
from xml.parsers import expat

from keykeeper.kmip.ttlv import enums
from keykeeper.kmip.ttlv.codec import DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIZE
from keykeeper.kmip.ttlv.item import Item, ItemType, TtlvError
from keykeeper.kmip.ttlv.textual import (
    TYPE_NAMES,
    attribute_name_of,
    datetime_from_text,
    datetime_to_text,
    enum_from_text,
    enum_to_text,
    int_from_text,
    is_placeholder_text,
    mask_from_text,
    mask_to_text,
    placeholder,
    tag_from_text,
    tag_to_text,
    type_from_name,
    value_tag,
)

__all__ = ["from_xml", "iter_xml_messages", "placeholder", "to_xml"]

_HEX_BYTES = re.compile(r"(?:[0-9A-Fa-f]{2})*\Z")
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                          "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})
_TO_XML_MAX_DEPTH = 256


class _Node:
    __slots__ = ("attrs", "children", "name")

    def __init__(self, name: str, attrs: dict[str, str]) -> None:
        self.name = name
        self.attrs = attrs
        self.children: list[_Node] = []


# -- parsing -----------------------------------------------------------------------------------
def _refuse_dtd(*_args: object) -> None:
    raise TtlvError("XML with a DTD or entity declarations is refused")


def _refuse_entity(*_args: object) -> int:
    raise TtlvError("XML with a DTD or external entities is refused")


def _parse_tree(text: str | bytes, max_depth: int, max_size: int) -> _Node:
    if len(text) > max_size:
        raise TtlvError(f"XML of {len(text)} characters exceeds the limit of {max_size}")
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    top = _Node("", {})
    stack = [top]

    def start(name: str, attrs: dict[str, str]) -> None:
        if len(stack) > max_depth:
            raise TtlvError(f"XML nesting deeper than {max_depth} elements")
        node = _Node(name, attrs)
        stack[-1].children.append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop()

    def chars(data: str) -> None:
        if data.strip(" \t\r\n"):
            raise TtlvError("XML text content is not part of the KMIP XML encoding")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_entity
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise TtlvError(f"malformed XML: {expat.ErrorString(exc.code)} "
                        f"(line {exc.lineno}, column {exc.offset})") from None
    if len(top.children) != 1:  # pragma: no cover - expat demands one root element
        raise TtlvError("XML must hold exactly one root element")
    return top.children[0]


def _bool_from_text(text: str) -> bool:
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise TtlvError("Boolean value is neither true nor false")


def _big_from_hex(text: str) -> tuple[int, int]:
    digits = text[2:] if text.startswith("0x") else text
    if not digits or not _HEX_BYTES.match(digits if len(digits) % 2 == 0 else "0" + digits):
        raise TtlvError("BigInteger value is not hex")
    raw = bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)
    return int.from_bytes(raw, "big", signed=True), (len(raw) + 7) & ~7


def _value(tag: int, typ: ItemType, text: str,
           attr_name: str | None) -> tuple[int | bool | str | bytes, int | None]:
    vtag = value_tag(tag, attr_name)
    if typ is ItemType.INTEGER:
        if enums.mask_class(vtag) is not None:
            return mask_from_text(vtag, text, " "), None
        return int_from_text(text, 32, True, "Integer"), None
    if typ is ItemType.ENUMERATION:
        return enum_from_text(vtag, text), None
    if typ is ItemType.TEXT_STRING:
        return text, None
    if typ is ItemType.BYTE_STRING:
        if not _HEX_BYTES.match(text):
            raise TtlvError("ByteString value is not an even number of hex digits")
        return bytes.fromhex(text), None
    if typ is ItemType.BOOLEAN:
        return _bool_from_text(text), None
    if typ is ItemType.LONG_INTEGER:
        return int_from_text(text, 64, True, "LongInteger"), None
    if typ is ItemType.BIG_INTEGER:
        return _big_from_hex(text)
    if typ is ItemType.INTERVAL:
        return int_from_text(text, 32, False, "Interval"), None
    return datetime_from_text(text, typ is ItemType.DATE_TIME_EXTENDED), None


def _attribute_name(node: _Node) -> str | None:
    for child in node.children:
        if child.name == "AttributeName":
            return child.attrs.get("value") if child.attrs.get("type") == "TextString" else None
    return None


def _item(node: _Node, parse_placeholders: bool, attr_name: str | None) -> Item:
    attrs = node.attrs
    if node.name == "TTLV":
        tag = tag_from_text(attrs.get("tag", ""))
        extra = attrs.keys() - {"tag", "type", "value"}
    else:
        tag = tag_from_text(node.name)
        extra = attrs.keys() - {"type", "value"}
    if extra:
        raise TtlvError(f"unexpected XML attribute {sorted(extra)[0][:40]!r} on {node.name[:60]}")
    type_name = attrs.get("type")
    typ = ItemType.STRUCTURE if type_name is None else type_from_name(type_name)
    if typ is ItemType.STRUCTURE:
        if "value" in attrs:
            raise TtlvError(f"Structure {node.name[:60]} has a value attribute")
        name = _attribute_name(node)
        return Item.structure(tag, [_item(c, parse_placeholders, name) for c in node.children])
    if node.children:
        raise TtlvError(f"{type_name} {node.name[:60]} has child elements")
    text = attrs.get("value")
    if text is None:
        raise TtlvError(f"{type_name} {node.name[:60]} has no value attribute")
    if parse_placeholders and is_placeholder_text(text):
        return Item(tag, typ, text)
    value, width = _value(tag, typ, text, attr_name)
    return Item(tag, typ, value, width)


def from_xml(text: str | bytes, *, parse_placeholders: bool = False,
             max_depth: int = DEFAULT_MAX_DEPTH, max_size: int = DEFAULT_MAX_SIZE) -> Item:
    """The item of a KMIP XML document whose root element is the item (a RequestMessage,
    ResponseMessage or any other item). ``parse_placeholders`` keeps conformance
    placeholders (module docstring). Raises TtlvError for malformed XML, a DTD or entity,
    an unknown tag, type or enumeration name, a bad value, nesting deeper than
    ``max_depth`` or input longer than ``max_size``."""
    return _item(_parse_tree(text, max_depth, max_size), parse_placeholders, None)


def iter_xml_messages(text: str | bytes, *, parse_placeholders: bool = True,
                      max_depth: int = DEFAULT_MAX_DEPTH,
                      max_size: int = DEFAULT_MAX_SIZE) -> list[Item]:
    """The messages of a KMIP Profiles test-case file, in order: the children of its
    ``<KMIP>`` root (comments skipped), or the root itself when it is not ``<KMIP>``.
    Placeholders are kept by default. Raises TtlvError as :func:`from_xml`."""
    root = _parse_tree(text, max_depth + 1, max_size)
    nodes = root.children if root.name == "KMIP" else [root]
    if root.name == "KMIP" and root.attrs:
        raise TtlvError("unexpected XML attribute on KMIP")
    return [_item(node, parse_placeholders, None) for node in nodes]


# -- writing -----------------------------------------------------------------------------------
def _escape(text: str) -> str:
    if _XML_ILLEGAL.search(text):
        raise TtlvError("text holds a character that XML 1.0 cannot carry")
    return text.translate(_ESCAPES)


def _value_text(item: Item, attr_name: str | None) -> str:
    typ, value = item.type, item.value
    if isinstance(value, str):  # a Text String, or a placeholder of any type
        if typ is not ItemType.TEXT_STRING and not is_placeholder_text(value):
            raise TtlvError(f"{TYPE_NAMES[typ]} {item.tag:#08x} holds text")
        return value
    if isinstance(value, list):
        raise TtlvError(f"{TYPE_NAMES[typ]} {item.tag:#08x} holds a list")
    vtag = value_tag(item.tag, attr_name)
    if isinstance(value, (bytes, bytearray, memoryview)):
        if typ is not ItemType.BYTE_STRING:
            raise TtlvError(f"{TYPE_NAMES[typ]} {item.tag:#08x} holds bytes")
        return bytes(value).hex()
    if typ is ItemType.BOOLEAN:
        return "true" if value else "false"
    value = int(value)  # an IntEnum / IntFlag member prints as its number
    if typ is ItemType.INTEGER:
        return mask_to_text(vtag, value, " ") or str(value)
    if typ is ItemType.ENUMERATION:
        return enum_to_text(vtag, value)
    if typ is ItemType.BIG_INTEGER:
        need = (max(1, (value.bit_length() + 8) // 8) + 7) & ~7
        width = item.width or need
        if width < need or width % 8:
            raise TtlvError(f"BigInteger {item.tag:#08x} does not fit its width")
        return value.to_bytes(width, "big", signed=True).hex()
    if typ in (ItemType.DATE_TIME, ItemType.DATE_TIME_EXTENDED):
        return datetime_to_text(value, typ is ItemType.DATE_TIME_EXTENDED)
    if typ in (ItemType.LONG_INTEGER, ItemType.INTERVAL):
        return str(value)
    raise TtlvError(f"{TYPE_NAMES.get(typ, typ)!s} {item.tag:#08x} holds a wrong value")


def _write(item: Item, out: list[str], indent: str, attr_name: str | None, depth: int) -> None:
    if depth > _TO_XML_MAX_DEPTH:
        raise TtlvError(f"nesting deeper than {_TO_XML_MAX_DEPTH} Structures")
    name = tag_to_text(item.tag)
    head = f"<{name}" if name is not None else f'<TTLV tag="0x{item.tag:06X}"'
    if item.type is ItemType.STRUCTURE:
        children = item.children
        if not children:
            out.append(f"{indent}{head}/>")
            return
        out.append(f"{indent}{head}>")
        inner = attribute_name_of(children)
        for child in children:
            _write(child, out, indent + "  ", inner, depth + 1)
        out.append(f"{indent}</{name or 'TTLV'}>")
        return
    typ = TYPE_NAMES.get(item.type)
    if typ is None:
        raise TtlvError(f"unknown item type {item.type!r}")
    value = _escape(_value_text(item, attr_name))
    out.append(f'{indent}{head} type="{typ}" value="{value}"/>')


def to_xml(item: Item) -> str:
    """The KMIP XML of ``item`` (two-space indentation, no XML declaration). Raises
    TtlvError for a value that does not fit its type or text XML cannot carry."""
    out: list[str] = []
    _write(item, out, "", None, 1)
    return "\n".join(out)
