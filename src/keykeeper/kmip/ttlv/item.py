"""The TTLV tree: one :class:`Item` per Tag-Type-Length-Value (KMIP 2.1 §9.1.1).

Values by type (Python type in brackets):
Structure [list[Item]] · Integer [int, signed 32-bit] · Long Integer [int, signed 64-bit] ·
Big Integer [int, any size, two's complement on the wire] · Enumeration [int, unsigned
32-bit] · Boolean [bool] · Text String [str, UTF-8] · Byte String [bytes] · Date-Time
[int, seconds since the epoch, signed 64-bit] · Interval [int, seconds, unsigned 32-bit] ·
Date-Time Extended [int, microseconds since the epoch, signed 64-bit].

A Big Integer keeps its wire length: ``Item.width`` is the byte length the value was
decoded from (a multiple of 8) so that leading zero bytes survive a round trip; ``None``
encodes the value in the fewest 8-byte blocks.

Conformance placeholders (``$NOW``, ``$UNIQUE_IDENTIFIER_0``, ...) read from XML or JSON
with ``parse_placeholders=True`` are items of the declared type whose value is the
placeholder str; ``textual.placeholder(item)`` finds them and the binary encoder refuses
them (TtlvError) unless the type is Text String.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["Item", "ItemType", "TtlvError"]


class ItemType(IntEnum):
    """Item Type byte (KMIP 2.1 §9.1.1.2)."""

    STRUCTURE = 0x01
    INTEGER = 0x02
    LONG_INTEGER = 0x03
    BIG_INTEGER = 0x04
    ENUMERATION = 0x05
    BOOLEAN = 0x06
    TEXT_STRING = 0x07
    BYTE_STRING = 0x08
    DATE_TIME = 0x09
    INTERVAL = 0x0A
    DATE_TIME_EXTENDED = 0x0B


class TtlvError(ValueError):
    """Malformed TTLV, XML or JSON TTLV: answered with Result Reason ``Invalid_Message``
    (KMIP 2.1 §11, Table 'Result Reason'). The message says what is wrong, never echoes
    the input's bytes."""

    reason = "Invalid_Message"


@dataclass(slots=True, eq=True)
class Item:
    """One TTLV item. ``tag`` is the 3-byte tag as an int (``0x420020``)."""

    tag: int
    type: ItemType
    value: int | bool | str | bytes | list[Item]
    width: int | None = None  # Big Integer only: the byte length on the wire

    # -- structure helpers ---------------------------------------------------------------
    @property
    def children(self) -> list[Item]:
        """The items of a Structure. Raises TtlvError for any other type."""
        if self.type is not ItemType.STRUCTURE or not isinstance(self.value, list):
            raise TtlvError(f"tag {self.tag:#08x} is not a Structure")
        return self.value

    def __iter__(self) -> Iterator[Item]:
        return iter(self.children)

    def find(self, tag: int) -> Item | None:
        """The first child with ``tag``, or None."""
        for child in self.children:
            if child.tag == tag:
                return child
        return None

    def find_all(self, tag: int) -> list[Item]:
        return [child for child in self.children if child.tag == tag]

    @classmethod
    def structure(cls, tag: int, children: list[Item] | None = None) -> Item:
        return cls(tag, ItemType.STRUCTURE, list(children or []))
