"""Text forms of TTLV values shared by the XML and JSON encodings (KMIP Additional Message
Encodings v1.0 §4.1 JSON and §6.1 XML; KMIP Profiles v2.0 §5.4-5.5).

* Tags: the tag's name from tags.py (``"UniqueIdentifier"``) or ``"0x42xxxx"`` hex.
* Types: ``"Integer"``, ``"LongInteger"``, ``"BigInteger"``, ``"Enumeration"``, ``"Boolean"``,
  ``"TextString"``, ``"ByteString"``, ``"DateTime"``, ``"Interval"``,
  ``"DateTimeExtended"``, ``"Structure"``.
* Enumerations by name, or ``0x`` + 8 hex digits for a value without a name.
* Integers that are masks (tags.mask_class) as bit names joined by a separator (space in XML,
  ``|`` in JSON); a bit without a name as ``0x`` hex.
* Date-Time as ISO 8601 (``2001-01-01T10:00:00+10:00``) or ``0x`` hex seconds; Date-Time
  Extended likewise with microseconds.
* An Attribute Value (KMIP 1.x) takes its enumeration and mask names from the sibling
  Attribute Name: ``value_tag``.
* Conformance placeholders (``$NOW``, ``$UNIQUE_IDENTIFIER_0``, ``$NOW-3600``, ...): with
  ``parse_placeholders`` the item keeps its declared type and its value is the placeholder
  text (:func:`placeholder` finds them); they are bound before anything is encoded.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re

from keykeeper.kmip.ttlv import enums, tags
from keykeeper.kmip.ttlv.item import Item, ItemType, TtlvError

__all__ = [
    "TYPE_NAMES", "attribute_tag", "datetime_from_text", "datetime_to_text", "enum_from_text",
    "enum_to_text", "int_from_text", "is_placeholder_text", "mask_from_text", "mask_to_text",
    "placeholder", "tag_from_text", "tag_to_text", "type_from_name", "value_tag",
]

TYPE_NAMES: dict[ItemType, str] = {
    ItemType.STRUCTURE: "Structure", ItemType.INTEGER: "Integer",
    ItemType.LONG_INTEGER: "LongInteger", ItemType.BIG_INTEGER: "BigInteger",
    ItemType.ENUMERATION: "Enumeration", ItemType.BOOLEAN: "Boolean",
    ItemType.TEXT_STRING: "TextString", ItemType.BYTE_STRING: "ByteString",
    ItemType.DATE_TIME: "DateTime", ItemType.INTERVAL: "Interval",
    ItemType.DATE_TIME_EXTENDED: "DateTimeExtended",
}
_TYPES_BY_NAME = {name: typ for typ, name in TYPE_NAMES.items()}

_PLACEHOLDER = re.compile(r"\$[A-Z][A-Z0-9_]*(?:[+-][0-9]{1,10})?\Z")
_DECIMAL = re.compile(r"-?[0-9]{1,40}\Z")
_HEX = re.compile(r"0x[0-9A-Fa-f]{1,64}\Z")
_TAG_HEX = re.compile(r"0x(?:42|54)[0-9A-Fa-f]{4}\Z")
_WORD_SPLIT = re.compile(r"[\s\-]+")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_MICRO = _dt.timedelta(microseconds=1)
_ATTRIBUTE_NAME = 0x42000A
_ATTRIBUTE_VALUE = 0x42000B


def type_from_name(name: str) -> ItemType:
    typ = _TYPES_BY_NAME.get(name)
    if typ is None:
        raise TtlvError(f"unknown item type name {name[:40]!r}")
    return typ


def is_placeholder_text(text: str) -> bool:
    return _PLACEHOLDER.match(text) is not None


def placeholder(item: Item) -> str | None:
    """The placeholder text of an item parsed with ``parse_placeholders`` (``"$NOW"``,
    ``"$UNIQUE_IDENTIFIER_3"``, ``"$NOW-3600"``), else None. The item's type is the declared
    type; its value is the placeholder str (for a Text String: a str matching
    ``$NAME[_N][+-N]``)."""
    value = item.value
    if not isinstance(value, str) or item.type is ItemType.STRUCTURE:
        return None
    return value if is_placeholder_text(value) else None


# -- tags --------------------------------------------------------------------------------------
def tag_to_text(tag: int) -> str | None:
    """The tag's name, or None when tags.py does not know it."""
    return tags.tag_name(tag)


def tag_from_text(text: str) -> int:
    """A tag from its name or ``0x42xxxx`` / ``0x54xxxx`` hex. Raises TtlvError."""
    if _TAG_HEX.match(text):
        return int(text, 16)
    tag = tags.tag_value(text)
    if tag is None:
        raise TtlvError(f"unknown tag name {text[:60]!r}")
    return int(tag)


def attribute_tag(name: str) -> int | None:
    """The tag of a KMIP 1.x attribute named in an Attribute Name (``"Cryptographic Usage
    Mask"`` -> 0x42002C), or None (custom ``x-`` attributes and unknown names)."""
    tag = tags.tag_value(name)
    if tag is None:
        words = [w for w in _WORD_SPLIT.split(name.strip()) if w]
        tag = tags.tag_value("".join(w[:1].upper() + w[1:] for w in words))
    return None if tag is None else int(tag)


def value_tag(tag: int, attribute_name: str | None) -> int:
    """The tag whose enumeration and mask tables name ``tag``'s value: for an Attribute
    Value next to an Attribute Name, the named attribute's tag; else ``tag`` itself."""
    if tag == _ATTRIBUTE_VALUE and attribute_name is not None:
        named = attribute_tag(attribute_name)
        if named is not None:
            return named
    return tag


def attribute_name_of(children: list[Item]) -> str | None:
    """The Attribute Name text among ``children`` (KMIP 1.x Attribute), or None."""
    for child in children:
        if child.tag == _ATTRIBUTE_NAME:
            ok = child.type is ItemType.TEXT_STRING and isinstance(child.value, str)
            return child.value if ok and isinstance(child.value, str) else None
    return None


# -- integers ----------------------------------------------------------------------------------
def int_from_text(text: str, bits: int, signed: bool, what: str) -> int:
    """Decimal, or ``0x`` hex read as ``bits``-bit two's complement when ``signed``."""
    if _DECIMAL.match(text):
        value = int(text)
    elif _HEX.match(text):
        value = int(text, 16)
        if value >> bits:
            raise TtlvError(f"{what} hex value wider than {bits} bits")
        if signed and value >> (bits - 1):
            value -= 1 << bits
    else:
        raise TtlvError(f"{what} value {text[:40]!r} is neither decimal nor 0x hex")
    low, high = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed
                 else (0, (1 << bits) - 1))
    if not low <= value <= high:
        raise TtlvError(f"{what} value out of range")
    return value


def enum_to_text(tag: int, value: int) -> str:
    name = enums.enum_name(tag, value)
    return name if name is not None else f"0x{value:08X}"


def enum_from_text(tag: int, text: str) -> int:
    if _HEX.match(text) or _DECIMAL.match(text):
        return int_from_text(text, 32, False, "Enumeration")
    value = enums.enum_value(tag, text)
    if value is None:
        raise TtlvError(f"unknown Enumeration name {text[:60]!r} for tag {tag:#08x}")
    return int(value)


@functools.lru_cache(maxsize=64)
def _mask_bits(tag: int) -> tuple[tuple[int, str], ...] | None:
    cls = enums.mask_class(tag)
    if cls is None:
        return None
    bits: list[tuple[int, str]] = []
    for member in cls:
        value = int(member)
        names = enums.mask_names(tag, value) if value and not value & (value - 1) else None
        if names and not names[0].startswith("0x"):
            bits.append((value, names[0]))
    return tuple(bits)


def mask_to_text(tag: int, value: int, sep: str) -> str | None:
    """Bit names joined by ``sep``, unnamed bits as one ``0x`` hex part; None when ``tag``
    is not a mask."""
    bits = _mask_bits(tag)
    if bits is None:
        return None
    value &= 0xFFFFFFFF
    parts = [name for bit, name in bits if value & bit]
    rest = value
    for bit, _ in bits:
        rest &= ~bit
    if rest or not parts:
        parts.append(f"0x{rest:08X}")
    return sep.join(parts)


def mask_from_text(tag: int, text: str, sep: str) -> int:
    """Names, decimal or 0x hex parts joined by ``sep`` (whitespace around parts ignored),
    OR-ed together."""
    bits: tuple[tuple[int, str], ...] = _mask_bits(tag) or ()
    by_name = {name: bit for bit, name in bits}
    parts = text.split() if sep == " " else [p.strip() for p in text.split(sep)]
    if not parts or any(not p for p in parts):
        raise TtlvError("empty mask value")
    value = 0
    for part in parts:
        if part in by_name:
            value |= by_name[part]
        elif _HEX.match(part):
            value |= int_from_text(part, 32, False, "Integer mask")
        elif _DECIMAL.match(part):
            value |= int_from_text(part, 32, True, "Integer mask") & 0xFFFFFFFF
        else:
            raise TtlvError(f"unknown mask bit name {part[:60]!r} for tag {tag:#08x}")
    return value - (1 << 32) if value >> 31 else value


# -- date-times ------------------------------------------------------------------------------
def datetime_to_text(value: int, micro: bool) -> str:
    """ISO 8601 in UTC (``2008-03-14T11:56:40+00:00``, with 6 fractional digits when
    ``micro``); ``0x`` + 16 hex digits when the year falls outside 1..9999."""
    try:
        moment = _EPOCH + (_MICRO * value if micro else _dt.timedelta(seconds=value))
    except OverflowError:
        return f"0x{value & 0xFFFFFFFFFFFFFFFF:016X}"
    return moment.isoformat(timespec="microseconds" if micro else "seconds")


def datetime_from_text(text: str, micro: bool) -> int:
    """Seconds (or microseconds when ``micro``) since the epoch from ISO 8601 (no zone means
    UTC) or 0x hex. A Date-Time with a fraction of a second raises TtlvError."""
    what = "DateTimeExtended" if micro else "DateTime"
    if text.startswith("0x"):
        return int_from_text(text, 64, True, what)
    if len(text) > 40 or not text[:1].isdigit():
        raise TtlvError(f"{what} value is not ISO 8601")
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise TtlvError(f"{what} value is not ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    try:
        micros = (moment - _EPOCH) // _MICRO
    except OverflowError:  # pragma: no cover - a year 1..9999 always fits
        raise TtlvError(f"{what} value out of range") from None
    if micro:
        return micros
    if micros % 1_000_000:
        raise TtlvError("DateTime value has a fraction of a second")
    return micros // 1_000_000
