"""The Batch Error Continuation Option Undo (kmip/undo.py, Deps.all_or_nothing).

Live: through the real KMIP listener (tests/kmip/conftest.py): what an undone batch
answers, and that nothing it did is left in the store. In-process: the processor over a
real node on SQLite and PostgreSQL (tests/integration/conftest.py), and the
all-or-nothing transaction itself (savepoints, reads, hooks).
"""

from __future__ import annotations

import secrets
import time

import pytest
from sqlalchemy import text as sql

from keykeeper.errors import NotFound
from keykeeper.kmip import undo
from keykeeper.kmip.call import KmipSettings
from keykeeper.kmip.messages import (
    BatchResult,
    Response,
    batch_item,
    parse_response,
    request_message,
)
from keykeeper.kmip.processor import Peer, Processor
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import (
    BatchErrorContinuationOption,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    ObjectType,
    Operation,
    ResultReason,
    ResultStatus,
)
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.service.context import Principal
from keykeeper.service.deps import NotUndoable
from tests.integration.conftest import Node, node  # noqa: F401  (the fixture)
from tests.kmip.conftest import KmipServer
from tests.kmip.objects_support import alg, enum, length, mask, name_value, template, text
from tests.usage.conftest import stored_count

A, U = CryptographicAlgorithm, CryptographicUsageMask
UNDO = BatchErrorContinuationOption.UNDO
UNDONE, FAILED = ResultStatus.OPERATION_UNDONE, ResultStatus.OPERATION_FAILED


def _create(bits: int = 256, name: str | None = None, active: bool = True,
            now: float | None = None) -> Item:
    extra: dict[str, Item] = {}
    if name is not None:
        extra["Name"] = name_value(name)
    if active:
        extra["Activation_Date"] = Item(Tag.ACTIVATION_DATE, ItemType.DATE_TIME,
                                        int(time.time() if now is None else now) - 60)
    return batch_item(Operation.CREATE, [
        enum(Tag.OBJECT_TYPE, ObjectType.SYMMETRIC_KEY),
        template((2, 1), Cryptographic_Algorithm=alg(A.AES), Cryptographic_Length=length(bits),
                 Cryptographic_Usage_Mask=mask(int(U.ENCRYPT | U.DECRYPT)), **extra)])


def _on(operation: Operation, uid: str | None = None, *extra: Item) -> Item:
    payload = [text(Tag.UNIQUE_IDENTIFIER, uid)] if uid is not None else []
    return batch_item(operation, payload + list(extra))


MISSING = _on(Operation.GET, "no-such-object")  # fails: Object_Not_Found


def _undo(server: KmipServer, *items: Item) -> Response:
    return parse_response(server.call(request_message(list(items), continuation=UNDO)))


def _uid(result: BatchResult) -> str:
    assert result.payload is not None
    found = result.payload.find(Tag.UNIQUE_IDENTIFIER)
    assert found is not None and isinstance(found.value, str)
    return found.value


def _state(server: KmipServer, uid: str) -> str:
    r = server.rest.get(f"/v1/keys/{uid.split('/')[0]}")
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


# -- live ------------------------------------------------------------------------------------
def test_a_batch_that_succeeds_is_committed(kmip_server: KmipServer) -> None:
    got = _undo(kmip_server, _create(), _on(Operation.GET))  # Get: the ID Placeholder
    assert [i.status for i in got.items] == [ResultStatus.SUCCESS] * 2
    uid = _uid(got.items[0])
    assert _state(kmip_server, uid) == "active"


def test_a_failure_rolls_back_the_items_before_it(kmip_server: KmipServer) -> None:
    name = "undo-" + secrets.token_hex(4)
    got = _undo(kmip_server, _create(name=name), _on(Operation.GET), MISSING,
                _create())  # not served: the batch ends at the failure
    assert [i.status for i in got.items] == [UNDONE, UNDONE, FAILED]
    assert got.items[2].reason == ResultReason.OBJECT_NOT_FOUND
    uid = _uid(got.items[0])
    # The undone items keep their identifiers, nothing else: no key material leaves.
    get = got.items[1].payload
    assert get is not None and {c.tag for c in get.children} <= {
        Tag.UNIQUE_IDENTIFIER, Tag.OBJECT_TYPE}
    assert kmip_server.rest.get(f"/v1/keys/{uid.split('/')[0]}").status_code == 404
    later = parse_response(kmip_server.call(request_message([_on(Operation.GET, uid)])))
    assert later.items[0].reason == ResultReason.OBJECT_NOT_FOUND
    # The name is free again: the rolled-back key never existed.
    again = _undo(kmip_server, _create(name=name))
    assert again.items[0].status == ResultStatus.SUCCESS


def test_state_changes_are_rolled_back(kmip_server: KmipServer) -> None:
    first = _undo(kmip_server, _create(active=False), _create())
    pre, active = _uid(first.items[0]), _uid(first.items[1])
    assert (_state(kmip_server, pre), _state(kmip_server, active)) == ("pre-active", "active")
    revoke = _on(Operation.REVOKE, active, Item.structure(Tag.REVOCATION_REASON, [
        enum(Tag.REVOCATION_REASON_CODE, 5)]))  # Cessation of Operation
    got = _undo(kmip_server, _on(Operation.ACTIVATE, pre), revoke,
                _on(Operation.CHECK, active, mask(int(U.SIGN))))  # fails: wrong usage
    assert [i.status for i in got.items] == [UNDONE, UNDONE, FAILED]
    assert (_state(kmip_server, pre), _state(kmip_server, active)) == ("pre-active", "active")
    # The same batch without the failing item is committed.
    ok = _undo(kmip_server, _on(Operation.ACTIVATE, pre), revoke)
    assert [i.status for i in ok.items] == [ResultStatus.SUCCESS] * 2
    assert (_state(kmip_server, pre), _state(kmip_server, active)) == ("active", "deactivated")


def test_an_undone_encrypt_gives_no_ciphertext(kmip_server: KmipServer) -> None:
    uid = _uid(_undo(kmip_server, _create()).items[0])
    data = Item(Tag.DATA, ItemType.BYTE_STRING, b"attack at dawn")
    got = _undo(kmip_server, _on(Operation.ENCRYPT, uid, data), MISSING)
    assert [i.status for i in got.items] == [UNDONE, FAILED]
    payload = got.items[0].payload
    assert payload is not None and payload.find(Tag.DATA) is None \
        and payload.find(Tag.IV_COUNTER_NONCE) is None


def test_an_undone_batch_is_audited(kmip_server: KmipServer) -> None:
    got = _undo(kmip_server, _create(), _on(Operation.GET), MISSING)
    assert [i.status for i in got.items] == [UNDONE, UNDONE, FAILED]
    key_id = _uid(got.items[0]).split("/")[0]
    found: list[dict[str, str]] = []
    for _ in range(50):  # the audit search reads what the sinks have written
        r = kmip_server.rest.get("/v1/audit", params={"operation": "kmip.undo",
                                                      "key": key_id})
        assert r.status_code == 200, r.text
        found = r.json()["records"]
        if len(found) == 2:
            break
        time.sleep(0.1)
    assert sorted(rec.get("detail", "") for rec in found) == [
        "undone: create (item 1 of 2 rolled back; the batch failed at item 3)",
        "undone: get (item 2 of 2 rolled back; the batch failed at item 3)"]


# -- in-process, SQLite and PostgreSQL --------------------------------------------------------
def _processor(n: Node) -> tuple[Processor, Peer]:
    return (Processor(n.services, KmipSettings(namespace="default", extractable_default=True)),
            Peer("kmip", None, lambda: Principal("root")))


def test_undo_on_both_stores(node: Node) -> None:  # noqa: F811
    processor, peer = _processor(node)
    ctx = node.ctx()

    def run(*items: Item) -> Response:
        return parse_response(processor.process(request_message(list(items),
                                                                continuation=UNDO), peer))

    undone = run(_create(), _on(Operation.GET), _create(bits=100))  # bad length
    assert [i.status for i in undone.items] == [UNDONE, UNDONE, FAILED]
    with pytest.raises(NotFound):
        node.services.keys.get(ctx, _uid(undone.items[0]).split("/")[0])
    kept = run(_create(), _on(Operation.GET))
    assert [i.status for i in kept.items] == [ResultStatus.SUCCESS] * 2
    assert node.services.keys.get(ctx, _uid(kept.items[0]).split("/")[0]).algorithm \
        == "AES_256_GCM"


def test_all_or_nothing_savepoints_reads_and_hooks(node: Node) -> None:  # noqa: F811
    deps = node.services.deps
    with deps.transaction() as conn:
        conn.execute(sql("CREATE TABLE undo_probe (n INTEGER NOT NULL)"))
    events: list[str] = []

    def count() -> int:
        with deps.reading() as conn:
            return int(conn.execute(sql("SELECT count(*) FROM undo_probe")).scalar_one())

    with deps.all_or_nothing() as batch:
        with deps.transaction() as conn:
            conn.execute(sql("INSERT INTO undo_probe VALUES (1)"))
        with pytest.raises(NotFound), deps.transaction() as conn:  # only its savepoint
            conn.execute(sql("INSERT INTO undo_probe VALUES (2)"))
            raise NotFound("gone")
        assert count() == 1  # the batch reads its own changes
        deps.on_rollback(lambda: events.append("rolled back"))
        deps.after_commit(lambda: events.append("committed"))
        assert events == []
    assert batch.undone is False and events == ["committed"] and count() == 1

    with deps.all_or_nothing() as batch:
        with deps.transaction() as conn:
            conn.execute(sql("INSERT INTO undo_probe VALUES (3)"))
        deps.on_rollback(lambda: events.append("rolled back"))
        deps.after_commit(lambda: events.append("committed again"))
        with pytest.raises(NotUndoable):
            deps.refuse_in_batch("destroying an HSM-protected key")
        batch.undo()
    assert events == ["committed", "rolled back"] and count() == 1

    with pytest.raises(RuntimeError), deps.all_or_nothing(), deps.all_or_nothing():
        pass
    deps.refuse_in_batch("anything")  # outside a batch: allowed
    deps.after_commit(lambda: events.append("now"))
    assert events[-1] == "now"
    with deps.transaction() as conn:
        conn.execute(sql("DROP TABLE undo_probe"))


def test_undo_batches_are_bounded(node: Node,  # noqa: F811
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    processor, peer = _processor(node)
    rng = batch_item(Operation.RNG_RETRIEVE, [Item(Tag.DATA_LENGTH, ItemType.INTEGER, 8)])
    too_many = parse_response(processor.process(request_message(
        [rng] * (undo.MAX_ITEMS + 1), continuation=UNDO), peer))
    assert {(i.status, i.reason) for i in too_many.items} == {
        (FAILED, ResultReason.FEATURE_NOT_SUPPORTED)}
    monkeypatch.setattr(undo, "MAX_SECONDS", -1.0)  # every item starts too late
    late = parse_response(processor.process(request_message(
        [_create(), rng], continuation=UNDO), peer))
    assert [(i.status, i.reason) for i in late.items] == [  # the batch stops there
        (FAILED, ResultReason.GENERAL_FAILURE)]
    assert "time limit" in (late.items[0].message or "")


def test_usage_reserved_in_an_undone_batch_is_not_given_back(node: Node) -> None:  # noqa: F811
    """A block of uses reserved inside an undone batch vanishes from the store with the
    rollback: this node must not keep (and later return) units of it, or the stored count
    would fall below the committed operations."""
    processor, peer = _processor(node)

    def run(*items: Item, continuation: int | None = None) -> Response:
        return parse_response(processor.process(request_message(
            list(items), continuation=continuation), peer))

    uid = _uid(run(_create(now=node.clock.now.timestamp())).items[0])
    key_id = uid.split("/")[0]
    data = Item(Tag.DATA, ItemType.BYTE_STRING, b"x" * 16)
    encrypt = _on(Operation.ENCRYPT, uid, data)
    committed = run(*[encrypt] * 3)  # blocks of 1 and 2: nothing held afterwards
    assert all(i.ok for i in committed.items), committed.items[0].message
    undone = run(*[encrypt] * 6, MISSING, continuation=UNDO)
    assert [i.status for i in undone.items] == [UNDONE] * 6 + [FAILED]
    usage = node.services.usage
    assert usage is not None
    assert usage.held(key_id, 1) == 0
    usage.return_all()
    assert stored_count(node, key_id) == 3
