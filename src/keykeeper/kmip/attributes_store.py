"""The encoding of stored KMIP attributes in a key's labels (issue 5 §3: one store).

One label per attribute instance:
``kmip.<scope>.<slug>.<index>`` = JSON ``[name, value]``, where ``scope`` is the object
(``3`` for version 3, ``3p`` for its public part), ``slug`` the attribute name with
anything outside ``[A-Za-z0-9_-]`` replaced (plus a short hash of the name when replaced,
so two names never share a slug), ``index`` the KMIP Attribute Index (kept when other
instances come and go, KMIP 1.4 §2.1.1), and ``value`` the value item as
``[tag, type, value(, width)]`` with Byte Strings in hex and Structures as a list of
such items. A value of ``null`` hides a computed value (a deleted Name, say).
Labels hold at most 256 characters: a longer value is refused (Invalid_Field).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from keykeeper.kmip.call import KmipError
from keykeeper.kmip.ttlv import Item, ItemType

__all__ = ["Stored", "decode_object", "encode_object", "object_scope"]

# name -> instances (index, value); value None: the computed value is hidden.
Stored = dict[str, list[tuple[int, Item | None]]]

_CLEAN = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_MAX_VALUE = 256
_MAX_BITS = 900   # an integer of more bits has more than 270 decimal digits


def object_scope(version: int, public: bool) -> str:
    return f"{version}p" if public else str(version)


def _slug(name: str) -> str:
    if _CLEAN.match(name):
        return name
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:48]
    return cleaned + "-" + hashlib.sha256(name.encode()).hexdigest()[:6]


def _enc(item: Item, name: str) -> list[Any]:
    v: Any = item.value
    if item.type is ItemType.STRUCTURE:
        v = [_enc(c, name) for c in item.children]
    elif isinstance(v, bytes):
        v = v.hex()
    elif isinstance(v, int) and v.bit_length() > _MAX_BITS:
        # Over 270 decimal digits: never fits a label, and json.dumps would refuse an int
        # over 4,300 digits (a ValueError, not a client error).
        raise KmipError("Invalid_Field", f"the value of attribute '{name[:64]}' is too long "
                        f"to store (more than {_MAX_VALUE} characters)")
    out: list[Any] = [item.tag, int(item.type), v]
    if item.width is not None:
        out.append(item.width)
    return out


def _dec(obj: Any) -> Item:
    if not isinstance(obj, list) or len(obj) not in (3, 4):
        raise ValueError("bad item")
    tag, typ, v = obj[0], ItemType(obj[1]), obj[2]
    if not isinstance(tag, int):
        raise ValueError("bad tag")
    width = obj[3] if len(obj) == 4 else None
    if typ is ItemType.STRUCTURE:
        if not isinstance(v, list):
            raise ValueError("bad structure")
        return Item(tag, typ, [_dec(c) for c in v])
    if typ is ItemType.BYTE_STRING:
        if not isinstance(v, str):
            raise ValueError("bad bytes")
        return Item(tag, typ, bytes.fromhex(v))
    if typ is ItemType.TEXT_STRING:
        if not isinstance(v, str):
            raise ValueError("bad text")
        return Item(tag, typ, v)
    if typ is ItemType.BOOLEAN:
        if not isinstance(v, bool):
            raise ValueError("bad boolean")
        return Item(tag, typ, v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError("bad number")
    return Item(tag, typ, v, width if isinstance(width, int) else None)


def decode_object(labels: Mapping[str, str], scope: str) -> Stored:
    """The stored attributes of one object; labels that do not parse are ignored (a
    label edited by hand over REST must not break KMIP reads). A new dict and lists on
    every call (the caller may change them); the parsing of the same labels is reused."""
    prefix = f"kmip.{scope}."
    mine = tuple((label, text) for label, text in labels.items() if label.startswith(prefix))
    if not mine:
        return {}
    return {name: list(instances) for name, instances in _decode(mine)}


@functools.lru_cache(maxsize=1024)
def _decode(labels: tuple[tuple[str, str], ...]
            ) -> tuple[tuple[str, tuple[tuple[int, Item | None], ...]], ...]:
    # The Items are shared between calls: nothing changes an Item once made.
    found: Stored = {}
    for label, text in labels:
        try:
            index = int(label.rsplit(".", 1)[1])
            name, value = json.loads(text)
            if not isinstance(name, str):
                continue
            item = None if value is None else _dec(value)
        except (ValueError, TypeError, IndexError, RecursionError):
            continue
        found.setdefault(name, []).append((index, item))
    for instances in found.values():
        instances.sort(key=lambda pair: pair[0])
    return tuple((name, tuple(instances)) for name, instances in found.items())


def encode_object(labels: Mapping[str, str], scope: str, stored: Stored) -> dict[str, str]:
    """The ``kmip.*`` labels with this object's replaced by ``stored`` (other objects'
    kept). KmipError(Invalid_Field) for a value over 256 characters."""
    prefix = f"kmip.{scope}."
    out = {k: v for k, v in labels.items() if k.startswith("kmip.") and not k.startswith(prefix)}
    for name, instances in stored.items():
        for index, item in instances:
            text = json.dumps([name, None if item is None else _enc(item, name)],
                              separators=(",", ":"), ensure_ascii=False)
            if len(text) > _MAX_VALUE:
                raise KmipError("Invalid_Field", f"the value of attribute '{name[:64]}' is "
                                f"too long to store ({len(text)} > {_MAX_VALUE} characters)")
            out[f"{prefix}{_slug(name)}.{index}"] = text
    return out
