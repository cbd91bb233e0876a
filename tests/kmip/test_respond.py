"""Processor.respond (the TTLV listener's path: each batch item filtered and encoded once)
gives the same bytes as encoding Processor.process's answer, in every version, for
batches, refusals, Response_Too_Large and an item that cannot be encoded."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from keykeeper.kmip.call import Call, KmipSettings
from keykeeper.kmip.messages import batch_item, parse_response, request_message
from keykeeper.kmip.ops import OPERATIONS
from keykeeper.kmip.processor import Peer, Processor
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.codec import decode, encode, encode_structure
from keykeeper.kmip.ttlv.enums import (
    BatchErrorContinuationOption,
    Operation,
    ResultReason,
    ResultStatus,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.service.context import Principal
from tests.integration.conftest import Node, node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import Kmip, text, walk

VERSIONS = [(1, 0), (1, 2), (1, 4), (2, 0), (2, 1)]


@pytest.fixture(name="served")
def served_fixture(node: Node) -> Iterator[tuple[Processor, Peer, str]]:  # noqa: F811
    """A processor over a fresh node, a root peer, and the UID of an AES key on it."""
    processor = Processor(node.services, KmipSettings(namespace="default",
                                                      extractable_default=True))
    uid = Kmip(node, (2, 1)).create_aes()
    yield processor, Peer("kmip", None, lambda: Principal("root")), uid


def _same(processor: Processor, peer: Peer, message: Item) -> bytes:
    """respond's bytes, checked equal to encode(process()) (a retry when the second
    boundary of the Time Stamp fell between the two)."""
    for _ in range(3):
        fast = processor.respond(message, peer)
        slow = encode(processor.process(message, peer))
        if fast == slow:
            return fast
        time.sleep(0.05)
    raise AssertionError("respond() and encode(process()) differ")


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: f"{v[0]}.{v[1]}")
def test_respond_is_encode_of_process(served: tuple[Processor, Peer, str],
                                      version: tuple[int, int]) -> None:
    processor, peer, uid = served
    get_attrs = batch_item(Operation.GET_ATTRIBUTES, [text(Tag.UNIQUE_IDENTIFIER, uid)])
    missing = batch_item(Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, "no-such-object")])
    for items, options in (
            ([batch_item(Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, uid)])], {}),
            ([get_attrs], {}),              # 2.x attributes are dropped from a 1.x answer
            ([batch_item(Operation.QUERY, [])], {}),
            ([get_attrs, missing, get_attrs],
             {"continuation": BatchErrorContinuationOption.CONTINUE}),
            ([get_attrs, get_attrs], {"max_response_size": 200})):
        data = _same(processor, peer, request_message(items, version=version, **options))
        response = parse_response(decode(data))
        assert len(response.items) == len(items)
        if "max_response_size" in options:
            assert {r.reason for r in response.items} == {ResultReason.RESPONSE_TOO_LARGE}


def test_a_1_0_answer_holds_no_later_attribute(served: tuple[Processor, Peer, str]) -> None:
    processor, peer, uid = served

    def names(version: tuple[int, int]) -> list[object]:
        message = request_message([batch_item(Operation.GET_ATTRIBUTES,
                                              [text(Tag.UNIQUE_IDENTIFIER, uid)])],
                                  version=version)
        return [i.value for i in walk(decode(processor.respond(message, peer)))
                if i.tag == Tag.ATTRIBUTE_NAME]

    old, new = names((1, 0)), names((1, 4))
    assert "Cryptographic Usage Mask" in old and "State" in old
    assert "Original Creation Date" in new and "Original Creation Date" not in old
    assert set(old) < set(new)


def test_an_item_that_cannot_be_encoded_is_a_general_failure(
        served: tuple[Processor, Peer, str], monkeypatch: pytest.MonkeyPatch) -> None:
    processor, peer, _ = served

    def broken(call: Call, payload: Item) -> list[Item]:
        return [Item(Tag.UNIQUE_IDENTIFIER, ItemType.INTEGER, 1 << 40)]  # out of range

    monkeypatch.setitem(OPERATIONS, int(Operation.QUERY), broken)
    data = processor.respond(request_message([batch_item(Operation.QUERY, [])]), peer)
    response = parse_response(decode(data))
    assert [(r.status, r.reason) for r in response.items] == [
        (ResultStatus.OPERATION_FAILED, ResultReason.GENERAL_FAILURE)]


def test_encode_structure_is_encode_of_the_structure() -> None:
    parts = [Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, "abc"),
             Item(Tag.CRYPTOGRAPHIC_LENGTH, ItemType.INTEGER, 256)]
    whole = Item.structure(Tag.TEMPLATE_ATTRIBUTE, parts)
    assert encode_structure(Tag.TEMPLATE_ATTRIBUTE, [encode(p) for p in parts]) == \
        encode(whole)
