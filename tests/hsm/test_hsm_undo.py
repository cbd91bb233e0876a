"""HSM-protected keys in a KMIP batch with the Batch Error Continuation Option Undo
(kmip/undo.py): a rolled-back Re-Key leaves no token object behind, and a Destroy, which
no rollback could restore, is refused inside such a batch."""

from __future__ import annotations

from keykeeper.kmip.call import KmipSettings
from keykeeper.kmip.messages import Response, batch_item, parse_response, request_message
from keykeeper.kmip.processor import Peer, Processor
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    BatchErrorContinuationOption,
    Operation,
    ResultReason,
    ResultStatus,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.service.context import Principal
from tests.hsm.conftest import HsmNode
from tests.hsm.probe import objects


def _item(operation: Operation, uid: str, *extra: Item) -> Item:
    return batch_item(operation, [Item(Tag.UNIQUE_IDENTIFIER, ItemType.TEXT_STRING, uid),
                                  *extra])


def _run(node: HsmNode, *items: Item, undo: bool = True) -> Response:
    processor = Processor(node.services, KmipSettings(namespace="default"))
    peer = Peer("kmip", None, lambda: Principal("root"))
    continuation = BatchErrorContinuationOption.UNDO if undo else None
    return parse_response(processor.process(
        request_message(list(items), continuation=continuation), peer))


def test_a_rolled_back_rekey_leaves_no_token_object(hsm_node: HsmNode) -> None:
    key_id = hsm_node.create("undo-hsm", "AES_256_GCM")
    before = {o["id"] for o in objects(hsm_node.soft)}
    got = _run(hsm_node, _item(Operation.RE_KEY, f"{key_id}/1"),
               _item(Operation.GET, "no-such-object"))
    assert [i.status for i in got.items] == [ResultStatus.OPERATION_UNDONE,
                                             ResultStatus.OPERATION_FAILED]
    assert {o["id"] for o in objects(hsm_node.soft)} == before
    key = hsm_node.services.keys.get(hsm_node.ctx(), key_id)
    assert key.primary_version == 1 and [v.version for v in key.versions] == [1]
    # Without the failing item the new version stays, its token object too.
    kept = _run(hsm_node, _item(Operation.RE_KEY, f"{key_id}/1"))
    assert kept.items[0].status == ResultStatus.SUCCESS
    assert len({o["id"] for o in objects(hsm_node.soft)} - before) == 1


def test_destroying_an_hsm_key_is_refused_in_an_undo_batch(hsm_node: HsmNode) -> None:
    key_id = hsm_node.create("undo-hsm-destroy", "AES_256_GCM")
    uid = f"{key_id}/1"
    revoked = _run(hsm_node, _item(Operation.REVOKE, uid, Item.structure(
        Tag.REVOCATION_REASON, [Item(Tag.REVOCATION_REASON_CODE, ItemType.ENUMERATION, 5)])),
        undo=False)
    assert revoked.items[0].status == ResultStatus.SUCCESS, revoked.items[0].message
    before = {o["id"] for o in objects(hsm_node.soft)}
    got = _run(hsm_node, _item(Operation.DESTROY, uid))
    assert (got.items[0].status, got.items[0].reason) == (
        ResultStatus.OPERATION_FAILED, ResultReason.FEATURE_NOT_SUPPORTED)
    assert "cannot be undone" in (got.items[0].message or "")
    assert {o["id"] for o in objects(hsm_node.soft)} == before
    assert _run(hsm_node, _item(Operation.DESTROY, uid), undo=False).items[0].status \
        == ResultStatus.SUCCESS
    assert {o["id"] for o in objects(hsm_node.soft)} < before
