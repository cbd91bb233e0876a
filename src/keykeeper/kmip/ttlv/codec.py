"""Binary TTLV encoding (KMIP 1.4 §9.1, KMIP 2.1 §9.1).

Wire form of one item: Tag (3 bytes, big-endian) | Type (1 byte) | Length (4 bytes,
big-endian, bytes of the value without padding) | Value, padded with zero bytes to a
multiple of 8 bytes. A Structure's value is its children, back to back; its length is
theirs (always a multiple of 8, so no padding).

The decoder is strict: every rule below that a message breaks raises :class:`TtlvError`
(Result Reason ``Invalid_Message``), and nothing else escapes it for any input.

* Tag first byte 0x42 (KMIP) or 0x54 (extensions) -- KMIP 2.1 §9.1.3.1.
* Type one of the 11 Item Types -- KMIP 2.1 §9.1.1.2.
* Fixed lengths -- KMIP 2.1 §9.1.1.4: Integer, Enumeration, Interval 4;
  Long Integer, Boolean, Date-Time, Date-Time Extended 8; Big Integer a positive multiple
  of 8.
* Padding bytes zero; Boolean value 0 or 1; Text String valid UTF-8.
* Lengths stay inside the enclosing Structure and the buffer; one item fills the buffer
  exactly (no trailing bytes); nesting at most ``max_depth`` Structures; buffer at most
  ``max_size`` bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from keykeeper.kmip.ttlv.item import Item, ItemType, TtlvError

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_SIZE", "HEADER_SIZE", "decode", "encode",
           "encode_structure", "message_length"]

HEADER_SIZE = 8
DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_SIZE = 16 * 1024 * 1024  # bytes; a KMIP message larger than this is refused

_HEADER = struct.Struct(">II")  # (tag << 8 | type, length)
_HEADER_U32 = struct.Struct(">IIII")  # header, then a 4-byte value and its 4 padding bytes
_HEADER_I64 = struct.Struct(">IIq")
_HEADER_U64 = struct.Struct(">IIQ")
_I32_PAD = struct.Struct(">iI")
_U32_PAD = struct.Struct(">II")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_ZEROS = bytes(8)

_TYPES: tuple[ItemType | None, ...] = tuple(
    ItemType(b) if b in ItemType._value2member_map_ else None for b in range(256)
)
_TAG_PREFIXES = frozenset((0x42, 0x54))

_S = ItemType.STRUCTURE
_INT = ItemType.INTEGER
_LONG = ItemType.LONG_INTEGER
_BIG = ItemType.BIG_INTEGER
_ENUM = ItemType.ENUMERATION
_BOOL = ItemType.BOOLEAN
_TEXT = ItemType.TEXT_STRING
_BYTES = ItemType.BYTE_STRING
_DT = ItemType.DATE_TIME
_IV = ItemType.INTERVAL
_DTE = ItemType.DATE_TIME_EXTENDED

_I32 = (-(1 << 31), (1 << 31) - 1)
_U32 = (0, (1 << 32) - 1)
_S64 = (-(1 << 63), (1 << 63) - 1)
_RANGES = {_INT: _I32, _ENUM: _U32, _IV: _U32, _LONG: _S64, _DT: _S64, _DTE: _S64}
_FIXED = frozenset((*_RANGES, _BOOL))  # 4 or 8 value bytes: 16 bytes on the wire


# -- decoding --------------------------------------------------------------------------------
def message_length(header: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> int:
    """Total byte length of the message whose first 8 bytes are ``header`` (header
    included). The message must be a Structure (KMIP 2.1 §9.1: a message is one
    Structure). Raises TtlvError for fewer than 8 bytes, a type other than Structure, a
    length not a multiple of 8 or a total above ``max_size`` bytes."""
    if len(header) < HEADER_SIZE:
        raise TtlvError("TTLV header shorter than 8 bytes")
    tag_type, length = _HEADER.unpack_from(header, 0)
    if (tag_type >> 24) not in _TAG_PREFIXES:
        raise TtlvError("TTLV tag outside the KMIP ranges 0x42xxxx and 0x54xxxx")
    if tag_type & 0xFF != _S:
        raise TtlvError("a KMIP message must be a Structure")
    if length % 8:
        raise TtlvError("Structure length is not a multiple of 8")
    total: int = HEADER_SIZE + length
    if total > max_size:
        raise TtlvError(f"message of {total} bytes exceeds the limit of {max_size} bytes")
    return total


def decode(data: bytes | bytearray | memoryview, *, max_depth: int = DEFAULT_MAX_DEPTH,
           max_size: int = DEFAULT_MAX_SIZE) -> Item:
    """Decode exactly one TTLV item filling all of ``data``.

    ``max_depth`` bounds Structure nesting (the outermost Structure is depth 1),
    ``max_size`` the buffer length in bytes. Big Integers keep their wire length in
    ``Item.width``. Raises TtlvError for any malformed input (see the module docstring);
    iterative, so no input can exhaust the Python stack."""
    if not isinstance(data, bytes):
        data = bytes(data)
    size = len(data)
    if size > max_size:
        raise TtlvError(f"message of {size} bytes exceeds the limit of {max_size} bytes")
    if size < HEADER_SIZE:
        raise TtlvError("truncated TTLV: fewer than 8 bytes")
    unpack_header = _HEADER.unpack_from
    types = _TYPES
    prefixes = _TAG_PREFIXES
    zeros = _ZEROS
    root: list[Item] = []
    # Each frame: (children of the open Structure, end offset of its value).
    stack: list[tuple[list[Item], int]] = [(root, size)]
    pos = 0
    while True:
        children, end = stack[-1]
        if pos == end:
            stack.pop()
            if not stack:
                break
            continue
        if root and len(stack) == 1:
            raise TtlvError(f"trailing bytes after the TTLV item at offset {pos}")
        if pos + HEADER_SIZE > end:
            raise TtlvError(f"truncated TTLV: item header at offset {pos} overruns its container")
        tag_type, length = unpack_header(data, pos)
        tag = tag_type >> 8
        if (tag >> 16) not in prefixes:
            raise TtlvError(f"TTLV tag at offset {pos} outside the ranges 0x42xxxx and 0x54xxxx")
        typ = types[tag_type & 0xFF]
        if typ is None:
            raise TtlvError(f"unknown TTLV item type {tag_type & 0xFF:#04x} at offset {pos}")
        vpos = pos + HEADER_SIZE
        padded = (length + 7) & ~7
        nxt = vpos + padded
        if nxt > end:
            raise TtlvError(f"TTLV length at offset {pos} overruns its container")
        value: int | bool | str | bytes | list[Item]
        width = None
        if typ is _S:
            if length % 8:
                raise TtlvError(f"Structure length at offset {pos} is not a multiple of 8")
            if len(stack) > max_depth:
                raise TtlvError(f"TTLV nesting deeper than {max_depth} Structures")
            value = []
            children.append(Item(tag, typ, value))
            stack.append((value, nxt))
            pos = vpos
            continue
        if typ is _INT:
            if length != 4:
                raise TtlvError(f"Integer at offset {pos} has length {length}, not 4")
            value, pad = _I32_PAD.unpack_from(data, vpos)
        elif typ is _ENUM or typ is _IV:
            if length != 4:
                raise TtlvError(f"{typ.name} at offset {pos} has length {length}, not 4")
            value, pad = _U32_PAD.unpack_from(data, vpos)
        elif typ is _TEXT or typ is _BYTES:
            raw = data[vpos:vpos + length]
            pad = data[vpos + length:nxt] != zeros[:padded - length]
            if typ is _TEXT:
                try:
                    value = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise TtlvError(f"Text String at offset {pos} is not valid UTF-8") from None
            else:
                value = raw
        elif typ is _BIG:
            if length == 0 or length % 8:
                raise TtlvError(f"Big Integer at offset {pos} has length {length}, "
                                "not a positive multiple of 8")
            value = int.from_bytes(data[vpos:nxt], "big", signed=True)
            width = length
            pad = 0
        else:  # Long Integer, Boolean, Date-Time, Date-Time Extended: 8 bytes
            if length != 8:
                raise TtlvError(f"{typ.name} at offset {pos} has length {length}, not 8")
            pad = 0
            if typ is _BOOL:
                raw_bool = _U64.unpack_from(data, vpos)[0]
                if raw_bool > 1:
                    raise TtlvError(f"Boolean at offset {pos} is neither 0 nor 1")
                value = raw_bool == 1
            else:
                value = _I64.unpack_from(data, vpos)[0]
        if pad:
            raise TtlvError(f"non-zero padding in the item at offset {pos}")
        children.append(Item(tag, typ, value, width))
        pos = nxt
    if len(root) != 1:  # pragma: no cover - size >= 8 always yields one item or an error
        raise TtlvError("no TTLV item")
    return root[0]


# -- encoding --------------------------------------------------------------------------------
_ENCODE_MAX_DEPTH = 256


def encode(item: Item) -> bytes:
    """The TTLV bytes of ``item`` (KMIP 2.1 §9.1). Raises TtlvError for a value that does
    not fit its type (an Integer outside signed 32 bits, a Big Integer wider than its
    ``width``, a tag outside 0x42xxxx/0x54xxxx, a Text String that is not encodable, ...)
    or nesting deeper than 256 Structures."""
    out = bytearray()
    _encode_into(item, out, 1)
    return bytes(out)


def encode_structure(tag: int, parts: Sequence[bytes]) -> bytes:
    """The TTLV bytes of a Structure ``tag`` whose items are given already encoded
    (``parts``: each the bytes of one whole item, as from :func:`encode`). Raises
    TtlvError for a bad tag or a Structure longer than TTLV allows."""
    _check_tag(tag)
    length = sum(len(part) for part in parts)
    if length > 0xFFFFFFFF:
        raise TtlvError(f"Structure {tag:#08x} is too long for TTLV")
    return _HEADER.pack(tag << 8 | _S, length) + b"".join(parts)


def _check_tag(tag: object) -> int:
    if not isinstance(tag, int) or (tag >> 16) not in _TAG_PREFIXES or tag >> 24:
        raise TtlvError(f"tag {tag!r} outside the ranges 0x42xxxx and 0x54xxxx")
    return tag


def _item_type(typ: int) -> ItemType:
    try:
        return ItemType(typ)
    except ValueError:
        raise TtlvError(f"unknown item type {typ!r}") from None


def _check_number(typ: ItemType, tag: int, value: object) -> int:
    """``value`` of a fixed-length numeric item (Integer, Enumeration, Interval, Long
    Integer, Date-Time, Date-Time Extended, Boolean) once checked against its range."""
    if typ is _BOOL:
        if not isinstance(value, int) or value not in (0, 1):
            raise TtlvError(f"Boolean {tag:#08x} needs True or False")
        return int(value)
    low, high = _RANGES[typ]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise TtlvError(f"{ItemType(typ).name} {tag:#08x} value out of range")
    return value


def _text_bytes(tag: int, value: object) -> bytes:
    if not isinstance(value, str):
        raise TtlvError(f"Text String {tag:#08x} needs a str value")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise TtlvError(f"Text String {tag:#08x} is not encodable as UTF-8") from None


def _byte_string(tag: int, value: object) -> bytes | bytearray | memoryview:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TtlvError(f"Byte String {tag:#08x} needs a bytes value")
    return value


def _parts(item: Item, depth: int) -> tuple[int, ItemType, Any]:
    """(tag, type, value) of an item to encode, checked (a Structure: a list, not nested
    deeper than the encoder allows); TtlvError otherwise."""
    if not isinstance(item, Item):
        raise TtlvError(f"cannot encode {type(item).__name__} as a TTLV item")
    tag = item.tag
    if not isinstance(tag, int) or (tag >> 16) not in _TAG_PREFIXES or tag >> 24:
        _check_tag(tag)
    typ = item.type
    if not isinstance(typ, ItemType):
        typ = _item_type(typ)
    value = item.value
    if typ is _S:
        if not isinstance(value, list):
            raise TtlvError(f"Structure {tag:#08x} needs a list of items")
        if depth > _ENCODE_MAX_DEPTH:
            raise TtlvError(f"TTLV nesting deeper than {_ENCODE_MAX_DEPTH} Structures")
    return tag, typ, value


def _big_bytes(item: Item) -> bytes:
    value = item.value
    if not isinstance(value, int) or isinstance(value, bool):
        raise TtlvError(f"Big Integer {item.tag:#08x} needs an int value")
    need = max(1, (value.bit_length() + 8) // 8)  # incl. the sign bit
    need = (need + 7) & ~7
    width = item.width if item.width is not None else need
    if width <= 0 or width % 8:
        raise TtlvError(f"Big Integer {item.tag:#08x} width {width} is not a positive "
                        "multiple of 8")
    if width < need:
        raise TtlvError(f"Big Integer {item.tag:#08x} does not fit in {width} bytes")
    return value.to_bytes(width, "big", signed=True)


def _encode_into(item: Item, out: bytearray, depth: int) -> None:
    tag, typ, value = _parts(item, depth)
    head = tag << 8 | typ
    if typ is _S:
        start = len(out)
        out += _HEADER.pack(head, 0)
        for child in value:
            _encode_into(child, out, depth + 1)
        length = len(out) - start - HEADER_SIZE
        if length > 0xFFFFFFFF:
            raise TtlvError(f"Structure {tag:#08x} is too long for TTLV")
        _HEADER.pack_into(out, start, head, length)
        return
    if typ is _INT or typ is _ENUM or typ is _IV:
        low, high = _RANGES[typ]
        if not (isinstance(value, int) and not isinstance(value, bool)
                and low <= value <= high):
            value = _check_number(typ, tag, value)  # raises
        out += _HEADER_U32.pack(head, 4, value & 0xFFFFFFFF, 0)
        return
    if typ in _FIXED:  # Long Integer, Date-Time, Date-Time Extended, Boolean: 8 bytes
        number = _check_number(typ, tag, value)
        out += (_HEADER_U64 if typ is _BOOL else _HEADER_I64).pack(head, 8, number)
        return
    raw: bytes | bytearray | memoryview
    if typ is _TEXT:
        raw = _text_bytes(tag, value)
    elif typ is _BYTES:
        raw = bytes(_byte_string(tag, value))
    elif typ is _BIG:
        raw = _big_bytes(item)
    else:  # pragma: no cover - every ItemType is handled above
        raise TtlvError(f"unknown item type {typ!r}")
    n = len(raw)
    if n > 0xFFFFFFFF:
        raise TtlvError(f"item {tag:#08x} is too long for TTLV")
    out += _HEADER.pack(head, n)
    out += raw
    if n & 7:
        out += _ZEROS[:8 - (n & 7)]
