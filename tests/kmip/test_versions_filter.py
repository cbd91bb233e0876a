"""filter_for_version against a plain reference: the same tree for every version, and
the item itself when nothing goes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from keykeeper.kmip.ttlv.enums import CryptographicAlgorithm
from keykeeper.kmip.ttlv.item import Item, ItemType
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.kmip.versions import SUPPORTED, _since, filter_for_version, older_reason, value_since
from tests.kmip.ttlv_strategies import leaves, trees

# real tags (introduced in every version), an extension tag, and Result Reason
TAGS = st.one_of(st.sampled_from(sorted(int(t) for t in Tag)), st.just(0x540001))
ENUMS = st.builds(Item, st.sampled_from([int(Tag.RESULT_REASON), int(Tag.OPERATION),
                                         int(Tag.OBJECT_TYPE), int(Tag.KEY_FORMAT_TYPE)]),
                  st.just(ItemType.ENUMERATION), st.integers(0, 0x40))
def _attribute(name: str, value: int) -> Item:
    return Item.structure(Tag.ATTRIBUTE, [
        Item(Tag.ATTRIBUTE_NAME, ItemType.TEXT_STRING, name),
        Item(Tag.ATTRIBUTE_VALUE, ItemType.ENUMERATION, value)])


# 1.x Attributes naming an enumerated attribute, with values of every age
ATTRIBUTES = st.builds(_attribute, st.sampled_from(["Cryptographic Algorithm", "Object Type",
                                                    "State", "x-custom"]),
                       st.integers(0, 0x40))


TREES = st.recursive(st.one_of(leaves(TAGS), ENUMS, ATTRIBUTES),
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
        if child.type is ItemType.STRUCTURE and child.tag == Tag.ATTRIBUTE \
                and _enum_too_new(child, version):
            continue
        kept.append(_reference(child, version) if child.type is ItemType.STRUCTURE else child)
    return Item(item.tag, item.type, kept)


def _enum_too_new(attribute: Item, version: tuple[int, int]) -> bool:
    """A 1.x Attribute whose enumeration value its named attribute defines later."""
    names = [c.value for c in attribute.children if c.tag == Tag.ATTRIBUTE_NAME]
    values = [c.value for c in attribute.children
              if c.tag == Tag.ATTRIBUTE_VALUE and c.type is ItemType.ENUMERATION]
    if version >= (2, 0) or not names or not values or not isinstance(names[-1], str) \
            or isinstance(values[-1], bool) or not isinstance(values[-1], int):
        return False
    tag = {"Cryptographic Algorithm": Tag.CRYPTOGRAPHIC_ALGORITHM,
           "Object Type": Tag.OBJECT_TYPE, "State": Tag.STATE}.get(names[-1])
    return tag is not None and value_since(tag, values[-1]) > version



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


def test_a_1x_attribute_with_a_newer_enumeration_value_goes() -> None:
    """Ed25519 (Cryptographic Algorithm 0x37) is defined in 2.0: a 1.4 answer leaves the
    whole 1.x Attribute out; AES (1.0) stays, and a custom attribute is never judged."""
    ed, aes = int(CryptographicAlgorithm.ED25519), int(CryptographicAlgorithm.AES)
    answer = Item.structure(Tag.RESPONSE_PAYLOAD, [
        _attribute("Cryptographic Algorithm", ed), _attribute("Cryptographic Algorithm", aes),
        _attribute("x-custom", ed)])
    got = filter_for_version(answer, (1, 4))
    assert got.children == [answer.children[1], answer.children[2]]
    assert filter_for_version(answer, (2, 0)) is answer
    chacha = _attribute("Cryptographic Algorithm", int(CryptographicAlgorithm.CHACHA20))
    assert filter_for_version(Item.structure(Tag.RESPONSE_PAYLOAD, [chacha]), (1, 3)).children == []
    assert filter_for_version(Item.structure(Tag.RESPONSE_PAYLOAD, [chacha]), (1, 4)).children \
        == [chacha]
