"""Item types of a Request Payload that every operation relies on, checked once before an
operation runs (kmip/processor.py): a field of the wrong type is Invalid_Field, never
silently ignored or read as absent.

Checked, at any depth of the payload (KMIP 2.1 §11 "Tags" gives each tag its type):

* a tag that carries an enumeration (enums.enum_class) must be an Enumeration -- except
  Unique Identifier and Linked Object Identifier, which KMIP 2.x also allows as Text
  String or Integer (the operations read those: call.Call.uid), Attribute Reference,
  also a Structure (Vendor Identification, Attribute Name) in KMIP 2.x, and PKCS#11
  Function, an Integer for a vendor-defined function (KMIP 2.1 §6.1.37; ops/pkcs11.py);
* a mask tag (Cryptographic Usage Mask, ...) must be an Integer;
* a date tag (Activation Date, Compromise Occurrence Date, ... every tag whose name ends
  in "Date") must be a Date-Time.

A 1.x ``Attribute Value`` takes the type of its Attribute Name: it is not checked here.
"""

from __future__ import annotations

from keykeeper.kmip.call import KmipError
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import enum_class, mask_class
from keykeeper.kmip.ttlv.tags import Tag, tag_spec_name

__all__ = ["check_payload_types"]

_ANY_TYPE = frozenset((int(Tag.UNIQUE_IDENTIFIER), int(Tag.LINKED_OBJECT_IDENTIFIER),
                       int(Tag.ATTRIBUTE_REFERENCE), int(Tag.PKCS_11_FUNCTION)))
_DATES = frozenset(int(t) for t in Tag if t.name.endswith("_DATE"))
_TYPE_NAMES = {ItemType.ENUMERATION: "an Enumeration", ItemType.INTEGER: "an Integer",
               ItemType.DATE_TIME: "a Date-Time"}


def _wanted(tag: int) -> ItemType | None:
    if tag in _DATES:
        return ItemType.DATE_TIME
    if tag in _ANY_TYPE:
        return None
    if enum_class(tag) is not None:
        return ItemType.ENUMERATION
    if mask_class(tag) is not None:
        return ItemType.INTEGER
    return None


def check_payload_types(payload: Item) -> None:
    """Raise KmipError(Invalid_Field) naming the first item of ``payload`` (a Structure)
    whose type is not its tag's (see the module docstring)."""
    stack = [payload]
    while stack:
        for child in stack.pop().children:
            want = _wanted(child.tag)
            if want is not None and child.type is not want:
                name = tag_spec_name(child.tag) or f"tag {child.tag:#08x}"
                raise KmipError("Invalid_Field", f"{name} must be {_TYPE_NAMES[want]}")
            if child.type is ItemType.STRUCTURE:
                stack.append(child)
