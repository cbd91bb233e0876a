"""Adversarial regression tests of the Batch Error Continuation Option Undo
(kmip/undo.py, Deps.all_or_nothing) -- races between an Undo batch in flight and the
rest of the node (other connections, the usage counter's sweep, the metadata cache).

Each test names the finding it reproduced (all fixed; a regression fails). The races are
made deterministic with a gate: a Query item that blocks until the test releases it,
so the batch is known to be in flight (its transaction open) while the test acts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from keykeeper.kmip.call import KmipSettings
from keykeeper.kmip.messages import Response, batch_item, parse_response, request_message
from keykeeper.kmip.ops import OPERATIONS
from keykeeper.kmip.processor import Peer, Processor
from keykeeper.kmip.ttlv import Item, ItemType
from keykeeper.kmip.ttlv.enums import Operation, ResultReason, ResultStatus
from keykeeper.kmip.ttlv.tags import Tag
from keykeeper.service.context import Principal
from tests.integration.conftest import Node, node  # noqa: F401  (the fixture)
from tests.kmip.objects_support import enum
from tests.kmip.test_undo import MISSING, UNDO, UNDONE, _create, _on, _uid
from tests.usage.conftest import stored_count

SUCCESS, FAILED = ResultStatus.SUCCESS, ResultStatus.OPERATION_FAILED
QUERY = batch_item(Operation.QUERY, [enum(Tag.QUERY_FUNCTION, 1)])  # Query Operations


class Gate:
    """Wraps the Query handler: the first gated Query signals ``entered`` and waits for
    ``release`` (at most 20 s)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.armed = True

    def wrap(self, handler: Callable[..., list[Item]]) -> Callable[..., list[Item]]:
        def gated(call: object, payload: object) -> list[Item]:
            if self.armed:
                self.armed = False
                self.entered.set()
                self.release.wait(20)
            return handler(call, payload)
        return gated


def _processor(n: Node, gate: Gate | None = None) -> tuple[Processor, Peer]:
    ops = dict(OPERATIONS)
    if gate is not None:
        ops[int(Operation.QUERY)] = gate.wrap(ops[int(Operation.QUERY)])
    return (Processor(n.services, KmipSettings(namespace="default", extractable_default=True),
                      operations=ops),
            Peer("kmip", None, lambda: Principal("root")))


def _run(processor: Processor, peer: Peer, *items: Item,
         continuation: int | None = None) -> Response:
    return parse_response(processor.process(request_message(list(items),
                                                            continuation=continuation), peer))


@contextmanager
def _in_flight(processor: Processor, peer: Peer, gate: Gate,
               *items: Item) -> Iterator[list[Response]]:
    """Run the Undo batch ``items`` (holding the gated QUERY) in a thread; the block runs
    while it is stopped at the gate; on exit the gate opens and the batch ends."""
    out: list[Response] = []
    t = threading.Thread(target=lambda: out.append(
        _run(processor, peer, *items, continuation=UNDO)))
    t.start()
    try:
        assert gate.entered.wait(20), "the batch never reached the gate"
        yield out
    finally:
        gate.release.set()
        t.join(30)
        assert not t.is_alive()


def _in_thread(fn: Callable[[], object], wait: float) -> tuple[threading.Thread, list[object]]:
    """Start ``fn`` in a thread and give it ``wait`` seconds (it may block on the batch)."""
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(fn()))
    t.start()
    t.join(wait)
    return t, got


def _key(processor: Processor, peer: Peer, n: Node) -> tuple[str, Item]:
    uid = _uid(_run(processor, peer, _create(now=n.clock.now.timestamp())).items[0])
    encrypt = _on(Operation.ENCRYPT, uid, Item(Tag.DATA, ItemType.BYTE_STRING, b"x" * 16))
    committed = _run(processor, peer, *[encrypt] * 3)  # blocks of 1 and 2: none held
    assert [i.status for i in committed.items] == [SUCCESS] * 3
    return uid, encrypt


# -- finding 1 ---------------------------------------------------------------------------------
# Finding 1 (fixed): lock-order inversion -- a plain request holds a usage slot's
# lock while it waits for the store (SQLite write lock / PostgreSQL row lock) the Undo batch
# holds, and the batch then waits for that slot's lock: both hang forever
def test_an_undo_batch_and_a_plain_encrypt_do_not_deadlock(node: Node) -> None:  # noqa: F811
    gate = Gate()
    processor, peer = _processor(node, gate)
    uid, encrypt = _key(processor, peer, node)  # next block: 4 units
    key_id = uid.split("/")[0]
    usage = node.services.usage
    assert usage is not None
    batch: list[Response] = []
    runner = threading.Thread(target=lambda: batch.append(_run(
        processor, peer, *[encrypt] * 4, QUERY, encrypt, continuation=UNDO)), daemon=True)
    runner.start()
    assert gate.entered.wait(20)
    assert usage.held(key_id, 1) == 0  # the batch used its whole block of 4
    # Another connection's Encrypt finds no unit: it takes the slot's lock and waits for
    # the store, which the batch holds.
    other: list[Response] = []
    plain = threading.Thread(target=lambda: other.append(_run(processor, peer, encrypt)),
                             daemon=True)
    plain.start()
    plain.join(1.0)
    gate.release.set()  # the batch's next Encrypt needs the slot's lock
    runner.join(8)
    hung = runner.is_alive()
    if hung:  # break the deadlock so the fixture can tear down (PostgreSQL row locks)
        usage._slots[(key_id, 1)].lock.release()
        runner.join(30)
        plain.join(30)
    assert not hung, "the Undo batch and a plain Encrypt deadlocked"
    plain.join(30)
    assert [i.status for i in batch[0].items] == [SUCCESS] * 6
    assert other and other[0].items[0].status == SUCCESS


# -- finding 2 ---------------------------------------------------------------------------------
# Finding 2 (fixed): units reserved by an Undo batch are handed to other
# connections before the batch commits; the rollback takes them out of the stored count
# though those operations happened
def test_units_of_an_undone_batch_used_by_another_connection_stay_counted(
        node: Node) -> None:  # noqa: F811
    gate = Gate()
    processor, peer = _processor(node, gate)
    uid, encrypt = _key(processor, peer, node)
    key_id = uid.split("/")[0]
    with _in_flight(processor, peer, gate, encrypt, QUERY, MISSING) as batch:
        # The batch reserved a block of 4 in its transaction and holds 3 of them.
        other, got = _in_thread(lambda: _run(processor, peer, encrypt), 5)
        other.join(30)
    assert [i.status for i in batch[0].items] == [UNDONE, UNDONE, FAILED]
    resp = got[0]
    assert isinstance(resp, Response) and resp.items[0].status == SUCCESS  # ciphertext out
    assert node.services.usage is not None
    node.services.usage.return_all()
    # 4 committed Encrypts (3 before, 1 from the other connection): never fewer counted.
    assert stored_count(node, key_id) >= 4


# -- finding 3 ---------------------------------------------------------------------------------
# Finding 3 (fixed): the usage sweep returns units reserved by an Undo batch in
# flight; its UPDATE waits for the batch and then subtracts units the rollback already took
# away (count below the truth)
def test_a_sweep_during_an_undone_batch_does_not_undercount(node: Node) -> None:  # noqa: F811
    gate = Gate()
    processor, peer = _processor(node, gate)
    uid, encrypt = _key(processor, peer, node)
    key_id = uid.split("/")[0]
    usage = node.services.usage
    assert usage is not None
    with _in_flight(processor, peer, gate, encrypt, QUERY, MISSING) as batch:
        sweep, _ = _in_thread(usage.return_all, 1.0)  # blocks on the batch's lock
    sweep.join(30)
    assert [i.status for i in batch[0].items] == [UNDONE, UNDONE, FAILED]
    usage.return_all()
    assert stored_count(node, key_id) >= 3  # 3 committed Encrypts


# -- finding 4 ---------------------------------------------------------------------------------
# Finding 4 (fixed): an Undo batch drops cached metadata when it changes a key, not
# after its commit: a read by another connection meanwhile caches the old state, used after
# the commit (revoked key still encrypts)
def test_a_key_revoked_in_an_undo_batch_is_refused_right_after_it(
        node: Node) -> None:  # noqa: F811
    gate = Gate()
    processor, peer = _processor(node, gate)
    uid, encrypt = _key(processor, peer, node)
    revoke = _on(Operation.REVOKE, uid, Item.structure(Tag.REVOCATION_REASON, [
        enum(Tag.REVOCATION_REASON_CODE, 5)]))  # Cessation of Operation: deactivated
    attrs = _on(Operation.GET_ATTRIBUTES, uid)
    with _in_flight(processor, peer, gate, revoke, QUERY) as batch:
        read, got = _in_thread(lambda: _run(processor, peer, attrs), 5)  # reads, caches
        read.join(30)
    assert isinstance(got[0], Response) and got[0].items[0].status == SUCCESS
    assert [i.status for i in batch[0].items] == [SUCCESS, SUCCESS]  # committed
    after = _run(processor, peer, encrypt)
    assert after.items[0].status == FAILED, "a deactivated key encrypted after the revoke"
    assert after.items[0].reason == ResultReason.WRONG_KEY_LIFECYCLE_STATE


def test_a_key_revoked_outside_undo_is_refused_right_after_it(node: Node) -> None:  # noqa: F811
    """The control for finding 4: without Undo the same revoke takes effect at once."""
    processor, peer = _processor(node)
    uid, encrypt = _key(processor, peer, node)
    revoke = _on(Operation.REVOKE, uid, Item.structure(Tag.REVOCATION_REASON, [
        enum(Tag.REVOCATION_REASON_CODE, 5)]))
    assert _run(processor, peer, _on(Operation.GET_ATTRIBUTES, uid)).items[0].status == SUCCESS
    assert _run(processor, peer, revoke).items[0].status == SUCCESS
    after = _run(processor, peer, encrypt)
    assert after.items[0].status == FAILED
    assert after.items[0].reason == ResultReason.WRONG_KEY_LIFECYCLE_STATE


# -- finding 5 ---------------------------------------------------------------------------------
# Finding 5 (fixed): the unwrapped key handle of a key created and used in an
# undone batch stays in custody's handle cache (key material of a key that never existed,
# kept for the cache TTL)
def test_no_handle_of_a_rolled_back_key_stays_cached(node: Node) -> None:  # noqa: F811
    processor, peer = _processor(node)
    data = Item(Tag.DATA, ItemType.BYTE_STRING, b"y" * 16)
    got = _run(processor, peer, _create(now=node.clock.now.timestamp()),
               _on(Operation.ENCRYPT, None, data), MISSING, continuation=UNDO)
    assert [i.status for i in got.items] == [UNDONE, UNDONE, FAILED]
    key_id = _uid(got.items[0]).split("/")[0]
    assert node.services.deps.custody.handles.get((key_id, 1)) is None
