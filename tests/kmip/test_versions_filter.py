"""filter_for_version against a plain reference: the same tree for every version, and
the item itself when nothing goes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from keykeeper.kmip.ttlv.item import Item, ItemType
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.versions import SUPPORTED, _since, filter_for_version, older_reason, value_since
from tests.kmip.ttlv_strategies import leaves, trees

# real tags (introduced in every version), an extension tag, and Result Reason
TAGS = st.one_of(st.sampled_from(sorted(int(t) for t in Tag)), st.just(0x540001))
ENUMS = st.builds(Item, st.sampled_from([int(Tag.RESULT_REASON), int(Tag.OPERATION),
                                         int(Tag.OBJECT_TYPE), int(Tag.KEY_FORMAT_TYPE)]),
                  st.just(ItemType.ENUMERATION), st.integers(0, 0x40))
TREES = st.recursive(st.one_of(leaves(TAGS), ENUMS),
                     lambda kids: st.builds(Item.structure, TAGS, st.lists(kids, max_size=6)),
                     max_leaves=40)


def _reference(item: Item, version: tuple[int, int]) -> Item:
    kept: list[Item] = []
    for child in item.children:
        if _since(child.tag) > version:
            continue
        if child.type is ItemType.ENUMERATION and isinstance(child.value, int) \
                and value_since(child.tag, child.value) > version:
            if child.tag == Tag.RESULT_REASON:
                kept.append(Item(child.tag, child.type, older_reason(child.value, version)))
            continue
        kept.append(_reference(child, version) if child.type is ItemType.STRUCTURE else child)
    return Item(item.tag, item.type, kept)


@settings(max_examples=300, deadline=None)
@given(st.builds(Item.structure, TAGS, st.lists(TREES, max_size=6)), st.sampled_from(SUPPORTED))
def test_filter_matches_the_reference(item: Item, version: tuple[int, int]) -> None:
    got = filter_for_version(item, version)
    assert got == (_reference(item, version) if version < SUPPORTED[0] else item)
    if got == item:
        assert got is item


@given(trees(max_leaves=8))
def test_filter_keeps_non_structures(item: Item) -> None:
    assert filter_for_version(item, (1, 0)) is item or item.type is ItemType.STRUCTURE
