"""Protocol versions: which ones keykeeper speaks, negotiation, and the version filter of
responses.

keykeeper answers KMIP 1.0-1.4, 2.0 and 2.1 (:data:`SUPPORTED`, in preference order:
highest first, as Discover Versions lists them, KMIP 2.1 §6.1.19). A response uses only
the tags and enumeration values its request's version defines (:func:`filter_for_version`,
driven by ``tags.tag_since`` and ``enums.enum_since``, and for a 1.x ``Attribute`` by the
enumeration of the attribute it names): a 1.0 client never receives an item it cannot
parse.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from keykeeper.kmip.ttlv import Item, ItemType, enums, tags
from keykeeper.kmip.ttlv._tag_table import TAGS
from keykeeper.kmip.ttlv.enums import ResultReason
from keykeeper.kmip.ttlv.tags import Tag

__all__ = ["HIGHEST", "SUPPORTED", "answer_version", "filter_for_version", "is_supported",
           "negotiate", "older_reason", "value_since"]

Version = tuple[int, int]

SUPPORTED: tuple[Version, ...] = ((2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0))
HIGHEST: Version = SUPPORTED[0]


def is_supported(version: Version) -> bool:
    return version in SUPPORTED


def answer_version(requested: Version) -> Version:
    """The version of the answer to a request in an unsupported ``requested`` version: the
    highest supported version not above it (a 1.5 client gets 1.4), else the lowest."""
    for version in SUPPORTED:
        if version <= requested:
            return version
    return SUPPORTED[-1]


def negotiate(client: Iterable[Version]) -> list[Version]:
    """Discover Versions (KMIP 2.1 §6.1.19): the server's versions in its preference
    order, only those the client lists too; all of them when the client lists none."""
    wanted = set(client)
    if not wanted:
        return list(SUPPORTED)
    return [v for v in SUPPORTED if v in wanted]


@functools.lru_cache(maxsize=4096)
def _since(tag: int) -> Version:
    try:
        return tags.tag_since(tag)
    except (KeyError, ValueError):
        return (1, 0)  # an extension tag (0x54xxxx) or one the tables do not know: kept


@functools.lru_cache(maxsize=16)
def _newer_tags(version: Version) -> frozenset[int]:
    """The tags the tables define only after ``version`` (``_since(tag) > version``);
    a tag they do not know is in no version's set: kept."""
    return frozenset(tag for tag in TAGS if _since(tag) > version)


@functools.lru_cache(maxsize=8192)
def value_since(tag: int, value: int) -> Version:
    """The first version defining Enumeration ``value`` of ``tag`` ((1, 0) if unknown)."""
    try:
        return enums.enum_since(tag, value)
    except (KeyError, ValueError):
        return (1, 0)


# Result Reasons of KMIP 2.x -> the 1.x reason a 1.x client expects for the same failure
# (the 1.4 test cases answer Permission Denied for a key in the wrong state, §3.1.x of
# the KMIP 1.4 test cases; 1.x has no usage-mask reason, so a key whose usage mask or
# purpose refuses the operation is Permission Denied too); anything else falls back to
# General Failure.
_OLDER_REASON: dict[str, str] = {
    "WRONG_KEY_LIFECYCLE_STATE": "PERMISSION_DENIED", "NOT_AUTHORIZED": "PERMISSION_DENIED",
    "ATTRIBUTE_READ_ONLY": "PERMISSION_DENIED", "READ_ONLY_ATTRIBUTE": "PERMISSION_DENIED",
    "SENSITIVE": "PERMISSION_DENIED", "NOT_EXTRACTABLE": "PERMISSION_DENIED",
    "INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK": "PERMISSION_DENIED",
    "OBJECT_NOT_FOUND": "ITEM_NOT_FOUND", "OBJECT_DESTROYED": "ITEM_NOT_FOUND",
    "ATTRIBUTE_NOT_FOUND": "ITEM_NOT_FOUND", "ATTRIBUTE_INSTANCE_NOT_FOUND": "ITEM_NOT_FOUND",
    "UNSUPPORTED_PROTOCOL_VERSION": "INVALID_MESSAGE", "CODEC_ERROR": "INVALID_MESSAGE",
    "UNKNOWN_TAG": "INVALID_MESSAGE",
    **{name: "INVALID_FIELD" for name in (
        "INVALID_ATTRIBUTE", "INVALID_ATTRIBUTE_VALUE", "UNSUPPORTED_ATTRIBUTE",
        "ATTRIBUTE_SINGLE_VALUED", "MULTI_VALUED_ATTRIBUTE", "NON_UNIQUE_NAME_ATTRIBUTE",
        "BAD_CRYPTOGRAPHIC_PARAMETERS",
        "UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS", "MISSING_INITIALIZATION_VECTOR",
        "INVALID_OBJECT_TYPE", "ILLEGAL_OBJECT_TYPE", "NUMERIC_RANGE", "INVALID_DATA_TYPE",
        "UNKNOWN_ENUMERATION", "OBJECT_ALREADY_EXISTS")},
}


def older_reason(value: object, version: Version) -> int:
    """The Result Reason to answer in ``version`` for ``value`` (a reason defined later):
    the corresponding older reason (e.g. Wrong_Key_Lifecycle_State -> Permission_Denied
    for 1.x), else General_Failure."""
    try:
        name = ResultReason(value).name if isinstance(value, int) else ""
    except ValueError:
        name = ""
    while name in _OLDER_REASON:
        name = _OLDER_REASON[name]
        if value_since(Tag.RESULT_REASON, ResultReason[name]) <= version:
            return int(ResultReason[name])
    return int(ResultReason.GENERAL_FAILURE)


def filter_for_version(item: Item, version: Version) -> Item:
    """The response tree ``item`` without the items that ``version`` does not define: a
    tag introduced later, or an Enumeration value introduced later (the whole item goes; a
    Result Reason introduced later becomes :func:`older_reason`, its Result Message
    stays). The root is always kept. 2.x-only items inside a 1.x answer are dropped, never
    translated (1.x/2.x payload shapes are the operations' business). Structures that
    lose nothing are shared with ``item``, not copied (``item`` itself when nothing goes).

    A 1.x ``Attribute`` structure (KMIP 1.4 §2.1.1) carries its value under the generic
    Attribute Value tag; when that value is an Enumeration value of the named attribute
    (``Cryptographic Algorithm`` ``Ed25519``, defined in 2.0) that ``version`` does not
    define, the whole Attribute goes, as a 2.x item with that value would."""
    if version >= HIGHEST:
        return item
    return _filter(item, version) if item.type is ItemType.STRUCTURE else item


_STRUCTURE = ItemType.STRUCTURE
_ENUMERATION = ItemType.ENUMERATION
_ATTRIBUTE = int(Tag.ATTRIBUTE)


def _attribute_too_new(attribute: Item, version: Version) -> bool:
    """Whether the 1.x ``attribute`` holds an Enumeration value its named attribute gets
    only after ``version`` (a custom or unknown name: never)."""
    if version >= (2, 0) or not isinstance(attribute.value, list):
        return False
    name = value = None
    for child in attribute.value:
        if child.tag == Tag.ATTRIBUTE_NAME:
            name = child.value
        elif child.tag == Tag.ATTRIBUTE_VALUE and child.type is _ENUMERATION:
            value = child.value
    if not isinstance(name, str) or not isinstance(value, int) or isinstance(value, bool):
        return False
    tag = tags.tag_value(name)
    return tag is not None and value_since(tag, value) > version


def _filter(item: Item, version: Version) -> Item:
    children = item.children
    kept: list[Item] | None = None  # copied from ``children`` at the first change only
    newer = _newer_tags(version)
    for i, child in enumerate(children):
        tag = child.tag
        out: Item | None = child
        if tag in newer:
            out = None
        else:
            typ = child.type
            if typ is _ENUMERATION:
                value = child.value
                if isinstance(value, int) and value_since(tag, value) > version:
                    # required in a failure: an older reason; any other item goes
                    out = (Item(tag, typ, older_reason(value, version))
                           if tag == Tag.RESULT_REASON else None)
            elif typ is _STRUCTURE:
                out = (None if tag == _ATTRIBUTE and _attribute_too_new(child, version)
                       else _filter(child, version))
        if out is not child:
            if kept is None:
                kept = children[:i]
            if out is not None:
                kept.append(out)
        elif kept is not None:
            kept.append(child)
    return item if kept is None else Item(item.tag, item.type, kept)
