"""KMIP JSON TTLV encoding (KMIP Additional Message Encodings v1.0 §4.1; KMIP Profiles v2.0
§5.5).

Each item is one object ``{"tag": ..., "type": ..., "value": ...}``:

* ``tag``: the tag's name (tags.tag_name) or ``"0x42xxxx"`` / ``"0x54xxxx"`` hex.
* ``type``: as in XML (``"Integer"``, ``"TextString"``, ...); omitted for a Structure.
* ``value`` by type: Structure an array of items; Integer a number, or for a mask tag the
  bit names joined by ``|`` (``"Encrypt|Decrypt"``); Long Integer a number when its
  magnitude is below 2^52 (exact in every JSON reader), else ``"0x"`` + 16 hex digits;
  Big Integer ``"0x"`` + hex of its full width; Enumeration its name or ``"0x"`` + 8 hex
  digits; Boolean ``true``/``false``; Text String a string; Byte String hex; Date-Time
  and Date-Time Extended ISO 8601 (or ``"0x"`` hex); Interval a number.

Reading also accepts numbers given as decimal or ``"0x"`` hex strings and numbers for
Enumerations and Big Integers. A KMIP 1.x Attribute Value takes its enumeration and mask
names from the sibling Attribute Name. Every malformed input raises TtlvError: invalid
JSON, duplicate or unknown keys, floats, NaN, bad values, nesting deeper than
``max_depth`` Structures, input longer than ``max_size``.
"""

from __future__ import annotations

import json
import re
from typing import Any

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
    tag_from_text,
    tag_to_text,
    type_from_name,
    value_tag,
)

__all__ = ["from_json", "to_json"]

_JSON_SAFE = 1 << 52
_HEX_BYTES = re.compile(r"(?:[0-9A-Fa-f]{2})*\Z")
_ATTRIBUTE_NAME = 0x42000A
_KEYS = frozenset(("tag", "type", "value"))
_TO_JSON_MAX_DEPTH = 256


# -- reading -----------------------------------------------------------------------------------
def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise TtlvError("duplicate key in a JSON TTLV object")
    return result


def _refuse_float(_text: str) -> Any:
    raise TtlvError("JSON TTLV numbers are integers")


def _int_value(raw: object, bits: int, signed: bool, what: str) -> int:
    if type(raw) is int:
        low, high = ((-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed
                     else (0, (1 << bits) - 1))
        if not low <= raw <= high:
            raise TtlvError(f"{what} value out of range")
        return raw
    if isinstance(raw, str):
        return int_from_text(raw, bits, signed, what)
    raise TtlvError(f"{what} value must be a number or a string")


def _text(raw: object, what: str) -> str:
    if not isinstance(raw, str):
        raise TtlvError(f"{what} value must be a string")
    return raw


def _big(raw: object) -> tuple[int, int | None]:
    if type(raw) is int:
        return raw, None
    text = _text(raw, "BigInteger")
    digits = text[2:] if text.startswith("0x") else ""
    if not digits or not _HEX_BYTES.match(digits if len(digits) % 2 == 0 else "0" + digits):
        raise TtlvError("BigInteger value is not 0x hex")
    data = bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)
    return int.from_bytes(data, "big", signed=True), (len(data) + 7) & ~7


def _value(tag: int, typ: ItemType, raw: object,
           attr_name: str | None) -> tuple[int | bool | str | bytes, int | None]:
    vtag = value_tag(tag, attr_name)
    if typ is ItemType.INTEGER:
        if isinstance(raw, str) and enums.mask_class(vtag) is not None:
            return mask_from_text(vtag, raw, "|"), None
        return _int_value(raw, 32, True, "Integer"), None
    if typ is ItemType.ENUMERATION:
        if type(raw) is int:
            return _int_value(raw, 32, False, "Enumeration"), None
        return enum_from_text(vtag, _text(raw, "Enumeration")), None
    if typ is ItemType.TEXT_STRING:
        return _text(raw, "TextString"), None
    if typ is ItemType.BYTE_STRING:
        text = _text(raw, "ByteString")
        if not _HEX_BYTES.match(text):
            raise TtlvError("ByteString value is not an even number of hex digits")
        return bytes.fromhex(text), None
    if typ is ItemType.BOOLEAN:
        if isinstance(raw, bool):
            return raw, None
        if raw in ("0x0", "0x00", "0x0000000000000000", "0x1", "0x01", "0x0000000000000001"):
            return str(raw).endswith("1"), None
        raise TtlvError("Boolean value is neither true nor false")
    if typ is ItemType.LONG_INTEGER:
        return _int_value(raw, 64, True, "LongInteger"), None
    if typ is ItemType.BIG_INTEGER:
        return _big(raw)
    if typ is ItemType.INTERVAL:
        return _int_value(raw, 32, False, "Interval"), None
    micro = typ is ItemType.DATE_TIME_EXTENDED
    if type(raw) is int:
        return _int_value(raw, 64, True, "DateTime"), None
    return datetime_from_text(_text(raw, "DateTime"), micro), None


def _attribute_name(children: list[Any]) -> str | None:
    for child in children:
        if isinstance(child, dict) and child.get("tag") in ("AttributeName", "0x42000A"):
            value = child.get("value")
            return value if child.get("type") == "TextString" and isinstance(value, str) else None
    return None


def _item(obj: object, depth: int, max_depth: int, parse_placeholders: bool,
          attr_name: str | None) -> Item:
    if not isinstance(obj, dict):
        raise TtlvError("a JSON TTLV item must be an object")
    extra = obj.keys() - _KEYS
    if extra:
        raise TtlvError(f"unexpected key {sorted(extra)[0][:40]!r} in a JSON TTLV object")
    tag = tag_from_text(_text(obj.get("tag"), "tag"))
    type_name = obj.get("type", "Structure")
    typ = type_from_name(_text(type_name, "type"))
    if "value" not in obj:
        raise TtlvError("a JSON TTLV object needs a value")
    raw = obj["value"]
    if typ is ItemType.STRUCTURE:
        if not isinstance(raw, list):
            raise TtlvError("a Structure value must be an array")
        if depth > max_depth:
            raise TtlvError(f"JSON TTLV nesting deeper than {max_depth} Structures")
        name = _attribute_name(raw)
        return Item.structure(tag, [_item(c, depth + 1, max_depth, parse_placeholders, name)
                                    for c in raw])
    if parse_placeholders and isinstance(raw, str) and is_placeholder_text(raw):
        return Item(tag, typ, raw)
    value, width = _value(tag, typ, raw, attr_name)
    return Item(tag, typ, value, width)


def from_json(data: bytes | str, *, parse_placeholders: bool = False,
              max_depth: int = DEFAULT_MAX_DEPTH, max_size: int = DEFAULT_MAX_SIZE) -> Item:
    """The item of one JSON TTLV object (UTF-8 bytes or str). ``parse_placeholders`` keeps
    conformance placeholders as in xml.py. Raises TtlvError for any malformed input."""
    if len(data) > max_size:
        raise TtlvError(f"JSON of {len(data)} bytes exceeds the limit of {max_size}")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        obj = json.loads(text, object_pairs_hook=_pairs, parse_float=_refuse_float,
                         parse_constant=_refuse_float)
    except UnicodeDecodeError:
        raise TtlvError("JSON TTLV is not valid UTF-8") from None
    except RecursionError:
        raise TtlvError("JSON nesting too deep") from None
    except json.JSONDecodeError as exc:
        raise TtlvError(f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
                        ) from None
    except TtlvError:
        raise
    except ValueError:  # an integer beyond Python's int-from-text digit limit (4,300)
        raise TtlvError("a JSON number has too many digits") from None
    return _item(obj, 1, max_depth, parse_placeholders, None)


# -- writing -----------------------------------------------------------------------------------
def _json_value(item: Item, attr_name: str | None) -> object:
    typ, value = item.type, item.value
    if isinstance(value, str):
        if typ is not ItemType.TEXT_STRING and not is_placeholder_text(value):
            raise TtlvError(f"{TYPE_NAMES[typ]} {item.tag:#08x} holds text")
        return value
    if isinstance(value, list):
        raise TtlvError(f"{TYPE_NAMES[typ]} {item.tag:#08x} holds a list")
    if isinstance(value, (bytes, bytearray, memoryview)):
        if typ is not ItemType.BYTE_STRING:
            raise TtlvError(f"{TYPE_NAMES[typ]} {item.tag:#08x} holds bytes")
        return bytes(value).hex()
    if typ is ItemType.BOOLEAN:
        return bool(value)
    value = int(value)  # an IntEnum / IntFlag member prints as its number
    vtag = value_tag(item.tag, attr_name)
    if typ is ItemType.INTEGER:
        return mask_to_text(vtag, value, "|") or value
    if typ is ItemType.ENUMERATION:
        return enum_to_text(vtag, value)
    if typ is ItemType.LONG_INTEGER:
        return value if -_JSON_SAFE < value < _JSON_SAFE else f"0x{value & (2**64 - 1):016X}"
    if typ is ItemType.BIG_INTEGER:
        need = (max(1, (value.bit_length() + 8) // 8) + 7) & ~7
        width = item.width or need
        if width < need or width % 8:
            raise TtlvError(f"BigInteger {item.tag:#08x} does not fit its width")
        return "0x" + value.to_bytes(width, "big", signed=True).hex().upper()
    if typ in (ItemType.DATE_TIME, ItemType.DATE_TIME_EXTENDED):
        return datetime_to_text(value, typ is ItemType.DATE_TIME_EXTENDED)
    if typ is ItemType.INTERVAL:
        return value
    raise TtlvError(f"{TYPE_NAMES.get(typ, typ)!s} {item.tag:#08x} holds a wrong value")


def _tree(item: Item, attr_name: str | None, depth: int) -> dict[str, object]:
    if depth > _TO_JSON_MAX_DEPTH:
        raise TtlvError(f"nesting deeper than {_TO_JSON_MAX_DEPTH} Structures")
    name = tag_to_text(item.tag)
    tag = name if name is not None else f"0x{item.tag:06X}"
    if item.type is ItemType.STRUCTURE:
        children = item.children
        inner = attribute_name_of(children)
        return {"tag": tag, "value": [_tree(c, inner, depth + 1) for c in children]}
    typ = TYPE_NAMES.get(item.type)
    if typ is None:
        raise TtlvError(f"unknown item type {item.type!r}")
    return {"tag": tag, "type": typ, "value": _json_value(item, attr_name)}


def to_json(item: Item) -> bytes:
    """The JSON TTLV of ``item`` as UTF-8 bytes. Raises TtlvError for a value that does not
    fit its type or text that is not encodable as UTF-8."""
    tree = _tree(item, None, 1)
    try:
        return json.dumps(tree, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        raise TtlvError("text is not encodable as UTF-8") from None
