"""Secret Data and Opaque Objects (KMIP 1.4 §2.2.7-2.2.8, KMIP 2.1 §2.2.7-2.2.8) over
keykeeper's key store (issue 5 §3: one key store); Certificates are stored the same way
(their parsing, Get and attributes: kmip/certificate.py).

Such an object is a key of purpose ``store`` (crypto/stored.py): algorithm
``SECRET_DATA`` or ``OPAQUE_DATA``, origin ``external``, one version whose material is
the object's bytes (1 B to 64 KiB), wrapped under the namespace KEK like key material.
It is seen, audited, granted, revoked and destroyed (crypto-erasure) over REST and the CLI
as any key; no cryptographic operation accepts it.

What KMIP says about the bytes and keykeeper's key model does not hold is kept in the
key's ``kmip.*`` labels: the Secret Data Type (Password, Seed) or the Opaque Data Type
in :data:`DATA_TYPE_LABEL`; a Secret Data's Key Format Type (Raw or Opaque, the one it was
registered in and a Get answers in) as its stored ``Key Format Type`` attribute.

==============  =======================================  ==========================
Object Type     registered / served as                   keykeeper algorithm
==============  =======================================  ==========================
Secret Data     Secret Data Type, Key Block (Key Format  ``SECRET_DATA``
                Type Raw or Opaque, Key Material bytes)
Opaque Object   Opaque Data Type, Opaque Data Value      ``OPAQUE_DATA``
Certificate     Certificate Type X.509, Certificate      ``X509_CERTIFICATE``
                Value (DER; kmip/certificate.py)
==============  =======================================  ==========================
"""

from __future__ import annotations

from collections.abc import Mapping

from keykeeper.crypto.stored import CERTIFICATE_ALGORITHM
from keykeeper.kmip.call import KmipError
from keykeeper.kmip.keyblock import bytes_of, read_key_block
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import KeyFormatType, ObjectType
from keykeeper.kmip.ttlv.tags import Tag

__all__ = [
    "DATA_TYPE_LABEL",
    "STORED_ALGORITHMS",
    "STORED_FORMATS",
    "StoredObject",
    "data_type",
    "encode_stored",
    "parse_stored",
    "stored_object_type",
]

STORED_ALGORITHMS: Mapping[ObjectType, str] = {
    ObjectType.SECRET_DATA: "SECRET_DATA",
    ObjectType.OPAQUE_OBJECT: "OPAQUE_DATA",
    ObjectType.CERTIFICATE: CERTIFICATE_ALGORITHM,   # kmip/certificate.py
}
"""The keykeeper algorithm of each stored Object Type."""
_TYPES = {name: otype for otype, name in STORED_ALGORITHMS.items()}

_EXTENSION = 0x80000000  # KMIP 2.1 §11: extension values of an Enumeration are 8XXXXXXX
_SECRET_DATA_TYPES = frozenset((1, 2))  # Password, Seed (KMIP 2.1 §11, Secret Data Type)

DATA_TYPE_LABEL = "kmip.data-type"
"""The label holding the Secret Data Type or Opaque Data Type (decimal)."""

STORED_FORMATS = frozenset({int(KeyFormatType.RAW), int(KeyFormatType.OPAQUE)})
"""The Key Format Types a Secret Data is taken and served in (its bytes as they are)."""


def stored_object_type(algorithm: str) -> ObjectType | None:
    """The Object Type of a key of ``algorithm`` when it holds stored data, else None."""
    return _TYPES.get(algorithm)


def data_type(labels: Mapping[str, str]) -> int | None:
    """The Secret Data Type or Opaque Data Type kept in ``labels`` (None when absent or
    unreadable)."""
    text = labels.get(DATA_TYPE_LABEL)
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


class StoredObject:
    """What a Register carries: ``data`` (the bytes), ``data_type``, and the Key Format
    Type of a Secret Data (None for an Opaque Object)."""

    __slots__ = ("data", "data_type", "fmt")

    def __init__(self, data: bytes, data_type: int, fmt: int | None) -> None:
        self.data, self.data_type, self.fmt = data, data_type, fmt

    def __repr__(self) -> str:
        return f"StoredObject(<{len(self.data)} bytes>, type={self.data_type}, fmt={self.fmt})"


def _enum_of(item: Item | None, what: str) -> int:
    if item is None or isinstance(item.value, bool) or not isinstance(item.value, int):
        raise KmipError("Invalid_Field", f"{what} is missing or not an Enumeration")
    return item.value


def parse_stored(otype: ObjectType, managed: Item) -> StoredObject:
    """The Secret Data or Opaque Object structure of a Register. Invalid_Field for a
    missing field, wrapped material (register it in clear), or a structure where bytes
    belong; Key_Format_Type_Not_Supported for a Secret Data in a format other than Raw
    or Opaque. The size is checked when it is stored (crypto/stored.py)."""
    if otype == ObjectType.OPAQUE_OBJECT:
        kind = _enum_of(managed.find(int(Tag.OPAQUE_DATA_TYPE)), "Opaque Data Type")
        if not _EXTENSION <= kind <= 0xFFFFFFFF:  # KMIP defines none: extensions only
            raise KmipError("Invalid_Field", "Opaque Data Type must be an extension value "
                            "(0x80000000 to 0xFFFFFFFF)")
        return StoredObject(bytes_of(managed.find(int(Tag.OPAQUE_DATA_VALUE)),
                                      "Opaque Data Value"), kind, None)
    kind = _enum_of(managed.find(int(Tag.SECRET_DATA_TYPE)), "Secret Data Type")
    if kind not in _SECRET_DATA_TYPES and not _EXTENSION <= kind <= 0xFFFFFFFF:
        raise KmipError("Invalid_Field", "Secret Data Type must be Password, Seed or an "
                        "extension value (0x80000000 to 0xFFFFFFFF)")
    _, fmt, value = read_key_block(managed, "Secret Data", "secret data")
    if fmt not in STORED_FORMATS:
        raise KmipError("Key_Format_Type_Not_Supported",
                        "Secret Data is taken in Key Format Type Raw or Opaque")
    data = bytes_of(value.find(int(Tag.KEY_MATERIAL)), "Key Material")
    return StoredObject(data, kind, fmt)


def encode_stored(otype: ObjectType, data: bytes, kind: int | None,
                  fmt: int | None = None) -> tuple[Item, list[Item]]:
    """``(Key Value or Opaque Data Value, the object's other leading fields)`` of a Get
    answer: for Secret Data ``(Key Value {Key Material}, [Secret Data Type])``, the Key
    Block built by the caller in ``fmt`` (Raw or Opaque, else
    Key_Format_Type_Not_Supported); for an Opaque Object ``(Opaque Data Value,
    [Opaque Data Type])``. A missing data type is answered as Password (Secret Data) or
    0 (Opaque)."""
    if otype == ObjectType.OPAQUE_OBJECT:
        return (Item(int(Tag.OPAQUE_DATA_VALUE), ItemType.BYTE_STRING, data),
                [Item(int(Tag.OPAQUE_DATA_TYPE), ItemType.ENUMERATION, kind or 0)])
    if fmt is not None and fmt not in STORED_FORMATS:
        raise KmipError("Key_Format_Type_Not_Supported",
                        "Secret Data is served in Key Format Type Raw or Opaque")
    material = Item(int(Tag.KEY_MATERIAL), ItemType.BYTE_STRING, data)
    return (Item.structure(int(Tag.KEY_VALUE), [material]),
            [Item(int(Tag.SECRET_DATA_TYPE), ItemType.ENUMERATION, kind or 1)])
