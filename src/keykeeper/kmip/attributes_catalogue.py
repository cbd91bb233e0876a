"""The KMIP attributes keykeeper knows, and the two shapes an attribute travels in.

An attribute is handled in one normal form everywhere in kmip/: a spec name
(``"Cryptographic Usage Mask"``, or ``"x-Barcode"`` for a custom attribute) and a value
:class:`Item` carrying the attribute's own tag (KMIP 2.x form), or ``Tag.ATTRIBUTE_VALUE``
for a custom attribute (which has no tag of its own).

On the wire (KMIP 1.4 §2.1.1 and KMIP 2.1 §2.1.2 / §4):

- 1.x: ``Attribute {Attribute Name (text), Attribute Index?, Attribute Value}``;
  a custom attribute is named ``x-...`` (client) or ``y-...`` (server).
- 2.x: the value item itself under its tag, inside ``Attributes``; a custom (vendor)
  attribute is ``Attribute {Vendor Identification, Attribute Name, Attribute Value}``, and
  1.x's ``x-Name`` is 2.x's vendor ``x``, name ``Name``. An attribute is referenced by
  ``Attribute Reference``: an Enumeration holding the attribute's tag, or a ``Vendor
  Attribute Reference`` structure (Vendor Identification, Attribute Name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from keykeeper.kmip.call import KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.tags import Tag

__all__ = [
    "AttrDef",
    "by_name",
    "by_tag",
    "date_time",
    "from_v1",
    "from_v2",
    "is_custom",
    "normal_value",
    "reference_name",
    "spec_name",
    "to_v1",
    "to_v2",
    "v2_reference",
]


@dataclass(frozen=True, slots=True)
class AttrDef:
    """One standard attribute: spec name, tag, whether several instances may exist
    (KMIP 1.4 §3 tables, "Multiple instances permitted"), and whether a client may add,
    modify or delete it ("Modifiable by client"; keykeeper refuses a few more, such as
    those its key model decides: Cryptographic Usage Mask follows the key's purpose)."""

    name: str
    tag: int
    multi: bool
    client: bool


# (spec name, multiple instances, modifiable by client)
_ROWS: tuple[tuple[str, bool, bool], ...] = (
    ("Unique Identifier", False, False),
    ("Name", True, True),
    ("Object Type", False, False),
    ("Cryptographic Algorithm", False, False),
    ("Cryptographic Length", False, False),
    ("Cryptographic Parameters", True, True),
    ("Cryptographic Domain Parameters", False, False),
    ("Certificate Type", False, False),
    ("Certificate Length", False, False),
    ("X.509 Certificate Identifier", False, False),
    ("X.509 Certificate Subject", False, False),
    ("X.509 Certificate Issuer", False, False),
    ("Certificate Identifier", False, False),
    ("Certificate Subject", False, False),
    ("Certificate Issuer", False, False),
    ("Digital Signature Algorithm", True, False),
    ("Digest", False, False),  # several allowed (one per format); keykeeper keeps one
    ("Operation Policy Name", False, True),
    ("Cryptographic Usage Mask", False, False),
    ("Lease Time", False, False),
    ("Usage Limits", False, True),
    ("State", False, False),
    ("Initial Date", False, False),
    ("Activation Date", False, False),
    ("Process Start Date", False, True),
    ("Protect Stop Date", False, True),
    ("Deactivation Date", False, False),
    ("Destroy Date", False, False),
    ("Compromise Occurrence Date", False, False),
    ("Compromise Date", False, False),
    ("Revocation Reason", False, False),
    ("Archive Date", False, False),
    ("Object Group", True, True),
    ("Fresh", False, False),
    ("Link", True, True),
    ("Application Specific Information", True, True),
    ("Contact Information", False, True),
    ("Last Change Date", False, False),
    ("Alternative Name", True, True),
    ("Key Value Present", False, False),
    ("Key Value Location", True, True),
    ("Original Creation Date", False, False),
    ("Random Number Generator", False, False),
    ("PKCS#12 Friendly Name", False, True),
    ("Description", False, True),
    ("Comment", False, True),
    ("Sensitive", False, True),
    ("Always Sensitive", False, False),
    ("Extractable", False, False),
    ("Never Extractable", False, False),
    ("Key Format Type", False, False),
    ("Short Unique Identifier", False, False),
    ("Object Group Member", False, True),
    ("Protection Level", False, True),
    ("Protection Period", False, True),
    ("Protection Storage Masks", False, True),
    ("Protection Storage Mask", False, False),
    ("Quantum Safe", False, True),
    ("NIST Key Type", False, False),
    ("Certificate Subject CN", True, False),
    ("Certificate Subject O", True, False),
    ("Certificate Subject OU", True, False),
    ("Certificate Subject Email", True, False),
    ("Certificate Subject C", True, False),
    ("Certificate Subject ST", True, False),
    ("Certificate Subject L", True, False),
    ("Certificate Subject UID", True, False),
    ("Certificate Subject Serial Number", True, False),
    ("Certificate Subject Title", True, False),
    ("Certificate Subject DC", True, False),
    ("Certificate Subject DN Qualifier", True, False),
    ("Certificate Issuer CN", True, False),
    ("Certificate Issuer O", True, False),
    ("Certificate Issuer OU", True, False),
    ("Certificate Issuer Email", True, False),
    ("Certificate Issuer C", True, False),
    ("Certificate Issuer ST", True, False),
    ("Certificate Issuer L", True, False),
    ("Certificate Issuer UID", True, False),
    ("Certificate Issuer Serial Number", True, False),
    ("Certificate Issuer Title", True, False),
    ("Certificate Issuer DC", True, False),
    ("Certificate Issuer DN Qualifier", True, False),
)


def _tag_member(name: str) -> str:
    return (name.upper().replace("#", "_").replace(".", "_").replace(" ", "_")
            .replace("-", "_").replace("__", "_"))


def _build() -> tuple[dict[str, AttrDef], dict[int, AttrDef]]:
    names: dict[str, AttrDef] = {}
    tags: dict[int, AttrDef] = {}
    for name, multi, client in _ROWS:
        member = _tag_member(name)
        tag = getattr(Tag, member, None)
        if tag is None and member.startswith(("X_509_", "PKCS_12_")):
            tag = getattr(Tag, member.replace("X_509_", "X509_").replace("PKCS_12", "PKCS12"),
                          None)
        if tag is None:
            continue  # not in the generated table: an attribute keykeeper cannot carry
        d = AttrDef(name, int(tag), multi, client)
        names[name.lower()] = d
        tags[int(tag)] = d
    return names, tags


_BY_NAME, _BY_TAG = _build()


def by_name(name: str) -> AttrDef | None:
    """The standard attribute of that spec name (case-insensitive), or None."""
    return _BY_NAME.get(name.lower())


def by_tag(tag: int) -> AttrDef | None:
    return _BY_TAG.get(tag)


def is_custom(name: str) -> bool:
    """``x-...`` and ``y-...`` (KMIP 1.4 §3.39), or a 2.x vendor's ``vendor-name``."""
    return "-" in name and by_name(name) is None and name.split("-", 1)[0] != ""


def _text(item: Item | None, what: str) -> str:
    if item is None or not isinstance(item.value, str):
        raise KmipError("Invalid_Field", f"{what} is missing or not a Text String")
    return item.value


def normal_value(name: str, value: Item) -> Item:
    """The value under the attribute's own tag (``Attribute Value`` for a custom one).
    KmipError(Invalid_Field) for an unknown, non-custom name."""
    d = by_name(name)
    if d is None:
        if not is_custom(name):
            raise KmipError("Invalid_Field", f"unknown attribute '{name[:64]}'")
        return Item(int(Tag.ATTRIBUTE_VALUE), value.type, value.value, value.width)
    return Item(d.tag, value.type, value.value, value.width)


def spec_name(name: str) -> str:
    """The canonical spelling of a standard attribute's name (custom names kept)."""
    d = by_name(name)
    return d.name if d is not None else name


def from_v1(attribute: Item) -> tuple[str, int | None, Item | None]:
    """``(name, index or None, value in normal form or None)`` of a 1.x Attribute."""
    name = spec_name(_text(attribute.find(Tag.ATTRIBUTE_NAME), "Attribute Name"))
    idx = attribute.find(Tag.ATTRIBUTE_INDEX)
    index = idx.value if idx is not None and isinstance(idx.value, int) else None
    value = attribute.find(Tag.ATTRIBUTE_VALUE)
    if value is None:
        if by_name(name) is None and not is_custom(name):
            raise KmipError("Invalid_Field", f"unknown attribute '{name[:64]}'")
        return name, index, None
    return name, index, normal_value(name, value)


def from_v2(item: Item) -> tuple[str, Item]:
    """``(name, value in normal form)`` of a 2.x attribute item (own tag, or a vendor
    ``Attribute`` structure)."""
    if item.tag == Tag.ATTRIBUTE:
        if item.find(Tag.ATTRIBUTE_NAME) is not None and item.find(
                Tag.VENDOR_IDENTIFICATION) is None:
            name, _, value = from_v1(item)  # a 1.x-shaped attribute in a 2.x message
            if value is None:
                raise KmipError("Invalid_Field", "the attribute has no value")
            return name, value
        vendor = _text(item.find(Tag.VENDOR_IDENTIFICATION), "Vendor Identification")
        name = _text(item.find(Tag.ATTRIBUTE_NAME), "Attribute Name")
        value = item.find(Tag.ATTRIBUTE_VALUE)
        if value is None:
            raise KmipError("Invalid_Field", "the vendor attribute has no Attribute Value")
        return f"{vendor}-{name}", normal_value(f"{vendor}-{name}", value)
    d = by_tag(item.tag)
    if d is None:
        raise KmipError("Invalid_Field", f"tag {item.tag:#08x} is not an attribute")
    return d.name, item


def to_v1(name: str, value: Item, index: int = 0) -> Item:
    """A 1.x ``Attribute`` structure (Attribute Index omitted when 0, as the profiles'
    test cases answer)."""
    children = [Item(int(Tag.ATTRIBUTE_NAME), ItemType.TEXT_STRING, name)]
    if index:
        children.append(Item(int(Tag.ATTRIBUTE_INDEX), ItemType.INTEGER, index))
    children.append(Item(int(Tag.ATTRIBUTE_VALUE), value.type, value.value, value.width))
    return Item.structure(int(Tag.ATTRIBUTE), children)


def to_v2(name: str, value: Item) -> Item:
    """The 2.x item: the value itself, or a vendor ``Attribute`` structure."""
    d = by_name(name)
    if d is not None:
        return Item(d.tag, value.type, value.value, value.width)
    vendor, _, short = name.partition("-")
    return Item.structure(int(Tag.ATTRIBUTE), [
        Item(int(Tag.VENDOR_IDENTIFICATION), ItemType.TEXT_STRING, vendor),
        Item(int(Tag.ATTRIBUTE_NAME), ItemType.TEXT_STRING, short),
        Item(int(Tag.ATTRIBUTE_VALUE), value.type, value.value, value.width)])


def reference_name(ref: Item) -> str:
    """The attribute name an ``Attribute Reference`` (2.x) or ``Attribute Name`` (1.x)
    item names. KmipError(Invalid_Field) for anything else."""
    if ref.type is ItemType.TEXT_STRING and isinstance(ref.value, str):
        return spec_name(ref.value)
    if ref.type is ItemType.ENUMERATION and isinstance(ref.value, int):
        d = by_tag(ref.value)
        if d is None:
            raise KmipError("Invalid_Field", f"tag {ref.value:#08x} is not an attribute")
        return d.name
    if ref.type is ItemType.STRUCTURE:
        vendor = _text(ref.find(Tag.VENDOR_IDENTIFICATION), "Vendor Identification")
        return f"{vendor}-{_text(ref.find(Tag.ATTRIBUTE_NAME), 'Attribute Name')}"
    raise KmipError("Invalid_Field", "an Attribute Reference is an Enumeration or a "
                    "Vendor Attribute Reference")


def v2_reference(name: str) -> Item:
    """The 2.x ``Attribute Reference`` of an attribute."""
    d = by_name(name)
    if d is not None:
        return Item(int(Tag.ATTRIBUTE_REFERENCE), ItemType.ENUMERATION, d.tag)
    vendor, _, short = name.partition("-")
    return Item.structure(int(Tag.ATTRIBUTE_REFERENCE), [
        Item(int(Tag.VENDOR_IDENTIFICATION), ItemType.TEXT_STRING, vendor),
        Item(int(Tag.ATTRIBUTE_NAME), ItemType.TEXT_STRING, short)])


def date_time(item: Item, name: str) -> datetime:
    """A client's Date-Time (seconds since the epoch) or Date-Time Extended (microseconds)
    as an aware UTC datetime (KMIP 2.1 §9.1.1.4). Every Date-Time a client sends goes
    through here: KmipError Invalid_Field for another type, or for a moment Python cannot
    represent (before year 1, after 9999, or beyond the platform's time_t)."""
    if item.type not in (ItemType.DATE_TIME, ItemType.DATE_TIME_EXTENDED) \
            or isinstance(item.value, bool) or not isinstance(item.value, int):
        raise KmipError("Invalid_Field", f"{name} is a Date-Time")
    seconds = item.value / 1_000_000 if item.type is ItemType.DATE_TIME_EXTENDED \
        else item.value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise KmipError("Invalid_Field", f"{name} is out of range") from None
