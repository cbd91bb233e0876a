"""Adversarial tests of Processor.respond (each batch item filtered and encoded once over
TTLV): at every Maximum Response Size boundary of a batch, for Undo batches, refusals,
unsupported versions and malformed messages, its bytes are ``encode(process(message))``
and an answer that is not Response_Too_Large fits the limit."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keykeeper.errors import Unauthenticated
from keykeeper.kmip.messages import batch_item, parse_response, request_message
from keykeeper.kmip.processor import Peer, Processor
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.codec import HEADER_SIZE, decode
from keykeeper.kmip.ttlv.enums import (
    BatchErrorContinuationOption,
    Operation,
    ResultReason,
    ResultStatus,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.service.context import Principal
from tests.integration.conftest import Node, node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import text
from tests.kmip.test_respond import _same, served_fixture  # noqa: F401  (the fixture)

VERSIONS = [(1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (2, 0), (2, 1)]
CONTINUE = BatchErrorContinuationOption.CONTINUE
UNDO = BatchErrorContinuationOption.UNDO


def _items(message: bytes) -> list[bytes]:
    """The encoded children of a Response Message: header, then each batch item."""
    out, at = [], HEADER_SIZE
    while at < len(message):
        length = int.from_bytes(message[at + 4:at + 8], "big")
        end = at + HEADER_SIZE + length + (-length % 8)
        out.append(message[at:end])
        at = end
    return out


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: f"{v[0]}.{v[1]}")
def test_every_maximum_response_size_boundary(served: tuple[Processor, Peer, str],
                                              version: tuple[int, int]) -> None:
    processor, peer, uid = served
    items = [batch_item(Operation.GET_ATTRIBUTES, [text(Tag.UNIQUE_IDENTIFIER, uid)]),
             batch_item(Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, "no-such-object")]),
             batch_item(Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, uid)])]
    full = _same(processor, peer, request_message(items, version=version,
                                                  continuation=CONTINUE))
    parts = _items(full)
    assert len(parts) == 1 + len(items)
    sizes = [HEADER_SIZE + sum(len(p) for p in parts[:n]) for n in range(1, len(parts) + 1)]
    for boundary in sizes:
        for limit in (boundary - 1, boundary, boundary + 1):
            data = _same(processor, peer, request_message(
                items, version=version, continuation=CONTINUE, max_response_size=limit))
            answer = parse_response(decode(data))
            assert answer.version == version
            if limit >= len(full):
                assert len(data) == len(full) <= limit
                assert _items(data)[1:] == parts[1:]
            else:
                assert [(r.status, r.reason) for r in answer.items] == [
                    (ResultStatus.OPERATION_FAILED, ResultReason.RESPONSE_TOO_LARGE)] * 3


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: f"{v[0]}.{v[1]}")
def test_undo_batches_refusals_and_unsupported_versions(
        served: tuple[Processor, Peer, str], version: tuple[int, int]) -> None:
    processor, peer, uid = served
    get = batch_item(Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, uid)])
    missing = batch_item(Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, "no-such-object")])

    def refused() -> Principal:
        raise Unauthenticated("no principal for this certificate")

    cases: list[tuple[Item, Peer, Callable[[list[tuple[int, int | None]]], bool]]] = [
        (request_message([get, missing], version=version, continuation=UNDO), peer,
         lambda r: [s for s, _ in r] == [ResultStatus.OPERATION_UNDONE,
                                         ResultStatus.OPERATION_FAILED]),
        (request_message([get, get], version=version, continuation=UNDO), peer,
         lambda r: r == [(ResultStatus.SUCCESS, None)] * 2),
        (request_message([get, get], version=version), Peer("kmip", None, refused),
         lambda r: len(r) == 2 and all(s == ResultStatus.OPERATION_FAILED for s, _ in r)),
        (request_message([get], version=version, asynchronous=True), peer,
         lambda r: r == [(ResultStatus.OPERATION_FAILED,
                          ResultReason.OPERATION_NOT_SUPPORTED)]),
    ]
    for message, who, expected in cases:
        answer = parse_response(decode(_same(processor, who, message)))
        assert expected([(r.status, r.reason) for r in answer.items]), answer.items
    for bad in ((1, 5), (3, 0), (0, 9)):
        answer = parse_response(decode(_same(processor, peer,
                                             request_message([get], version=bad))))
        assert [r.status for r in answer.items] == [ResultStatus.OPERATION_FAILED]


def test_malformed_messages(served: tuple[Processor, Peer, str]) -> None:
    processor, peer, uid = served
    get = batch_item(Operation.GET, [text(Tag.UNIQUE_IDENTIFIER, uid)])
    good = request_message([get, get])
    header, *items = good.children
    no_batch_count = Item.structure(Tag.REQUEST_HEADER, [
        c for c in header.children if c.tag != Tag.BATCH_COUNT])
    for message in (
            Item.structure(Tag.REQUEST_MESSAGE, [header]),             # no batch item
            Item.structure(Tag.REQUEST_MESSAGE, [header, items[0]]),   # count says 2
            Item.structure(Tag.REQUEST_MESSAGE, [no_batch_count, *items]),
            Item.structure(Tag.RESPONSE_MESSAGE, good.children),       # not a request
            Item(Tag.REQUEST_MESSAGE, ItemType.INTEGER, 1)):
        answer = parse_response(decode(_same(processor, peer, message)))
        assert answer.items and all(r.status == ResultStatus.OPERATION_FAILED
                                    for r in answer.items)
