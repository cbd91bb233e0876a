"""The KMIP TTLV codec (KMIP 1.4 §9.1, KMIP 2.1 §9): a typed tree of :class:`Item` s and
its three encodings -- binary TTLV (codec.py), XML (xml.py) and JSON (json.py), with the
tag and enumeration tables generated from the specification (tags.py, enums.py).
Pure: imports nothing of keykeeper outside this package."""

from keykeeper.kmip.ttlv.item import Item, ItemType, TtlvError

__all__ = ["Item", "ItemType", "TtlvError"]
