"""Hypothesis strategies for TTLV trees (shared by the codec, XML and JSON tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from keykeeper.kmip.ttlv.item import Item, ItemType

TAGS = st.one_of(st.integers(0x420000, 0x42FFFF), st.integers(0x540000, 0x54FFFF))


@st.composite
def big_integers(draw: st.DrawFn, tags: st.SearchStrategy[int] = TAGS) -> Item:
    value = draw(st.integers(-(1 << 300), 1 << 300))
    need = (max(1, (value.bit_length() + 8) // 8) + 7) & ~7
    width = need + 8 * draw(st.integers(0, 3))
    return Item(draw(tags), ItemType.BIG_INTEGER, value, width)


def leaves(tags: st.SearchStrategy[int] = TAGS) -> st.SearchStrategy[Item]:
    def of(typ: ItemType, values: st.SearchStrategy[object]) -> st.SearchStrategy[Item]:
        return st.builds(Item, tags, st.just(typ), values)

    s64 = st.integers(-(1 << 63), (1 << 63) - 1)
    u32 = st.integers(0, (1 << 32) - 1)
    return st.one_of(
        of(ItemType.INTEGER, st.integers(-(1 << 31), (1 << 31) - 1)),
        of(ItemType.LONG_INTEGER, s64),
        big_integers(tags),
        of(ItemType.ENUMERATION, u32),
        of(ItemType.BOOLEAN, st.booleans()),
        of(ItemType.TEXT_STRING, st.text(max_size=40)),
        of(ItemType.BYTE_STRING, st.binary(max_size=40)),
        of(ItemType.DATE_TIME, s64),
        of(ItemType.INTERVAL, u32),
        of(ItemType.DATE_TIME_EXTENDED, s64),
    )


def trees(tags: st.SearchStrategy[int] = TAGS, max_leaves: int = 30) -> st.SearchStrategy[Item]:
    return st.recursive(
        leaves(tags),
        lambda kids: st.builds(Item.structure, tags, st.lists(kids, max_size=5)),
        max_leaves=max_leaves,
    )
