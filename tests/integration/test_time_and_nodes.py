"""Time (injected clock) and several nodes over one store."""

from __future__ import annotations

import time

import pytest

from keykeeper.errors import FailedPrecondition, InvalidArgument, Sealed
from keykeeper.service.keys import CreateKey
from tests.integration.conftest import PASSPHRASE, Node, make_node


def test_scheduled_destruction_runs_when_due(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="doomed"))
    svc.keys.create(ctx, CreateKey(name="kept"))
    ct = svc.crypto.encrypt(ctx, "doomed", b"x").ciphertext
    svc.keys.schedule_destruction(ctx, "doomed", 7)
    node.clock.advance(days=6, hours=23)
    assert svc.keys.destroy_due() == 0
    node.clock.advance(hours=2)
    assert svc.keys.destroy_due() == 1
    key = svc.keys.get(ctx, "doomed")
    assert key.state == "destroyed"
    assert {v.state for v in key.versions} == {"destroyed"}
    with svc.deps.reading() as conn:
        assert svc.deps.keys.wrapped_material(conn, key.id, 1) is None
    with pytest.raises(FailedPrecondition):
        svc.crypto.decrypt(ctx, "doomed", ct)
    assert svc.keys.get(ctx, "kept").state == "active"
    with svc.deps.reading() as conn:
        events = [e["action"] for e in svc.deps.keys.events(conn, key.id)]
    assert events == ["create", "schedule-destruction", "destroy"]


def test_compromised_then_destroyed_is_destroyed_compromised(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="leaked"))
    svc.keys.compromise(ctx, "leaked", "found on a paste site")
    svc.keys.schedule_destruction(ctx, "leaked", 7)
    assert svc.keys.cancel_destruction(ctx, "leaked").state == "compromised"
    svc.keys.schedule_destruction(ctx, "leaked", 7)
    node.clock.advance(days=8)
    svc.keys.destroy_due()
    key = svc.keys.get(ctx, "leaked")
    assert key.state == "destroyed-compromised"
    assert {v.state for v in key.versions} == {"destroyed-compromised"}


def test_rotation_period_sets_next_rotation_time(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    key = svc.keys.create(ctx, CreateKey(name="r", rotation_period="90d"))
    assert key.rotation_period == 90 * 86400
    assert key.next_rotation_time is not None
    assert (key.next_rotation_time - node.clock()).days == 90
    with pytest.raises(InvalidArgument):
        CreateKey(name="r2", rotation_period="59m")


def test_state_change_reaches_another_node_within_one_second(node: Node,
                                                            database_url: str) -> None:
    other = make_node(database_url, node.clock)
    other.services.system.unseal(PASSPHRASE)
    ctx_a, ctx_b = node.ctx(), other.ctx()
    node.services.keys.create(ctx_a, CreateKey(name="shared"))
    ct = other.services.crypto.encrypt(ctx_b, "shared", b"x").ciphertext  # B caches it
    node.services.keys.disable(ctx_a, "shared")
    deadline = time.monotonic() + 1.5
    refused_after = None
    started = time.monotonic()
    while time.monotonic() < deadline:
        try:
            other.services.crypto.decrypt(ctx_b, "shared", ct)
        except FailedPrecondition:
            refused_after = time.monotonic() - started
            break
        time.sleep(0.05)
    assert refused_after is not None and refused_after <= 1.1
    other.services.deps.engine.dispose()


def test_seal_drops_material_and_refuses_use(node: Node) -> None:
    svc, ctx = node.services, node.ctx()
    svc.keys.create(ctx, CreateKey(name="s"))
    svc.crypto.encrypt(ctx, "s", b"x")
    assert len(svc.deps.custody.handles) == 1
    svc.system.seal()
    assert len(svc.deps.custody.handles) == 0 and svc.deps.custody.sealed
    with pytest.raises(Sealed):
        svc.crypto.encrypt(ctx, "s", b"x")
    svc.system.unseal(PASSPHRASE)
    assert svc.crypto.encrypt(ctx, "s", b"x").key_version == 1


def test_concurrent_rotations_make_distinct_versions(node: Node) -> None:
    from concurrent.futures import ThreadPoolExecutor
    svc = node.services
    svc.keys.create(node.ctx(), CreateKey(name="busy"))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: svc.keys.rotate(node.ctx(), "busy").primary_version,
                                range(8)))
    assert sorted(results) == list(range(2, 10))
    assert [v.version for v in svc.keys.get(node.ctx(), "busy").versions] == list(range(1, 10))


def test_seal_reaches_every_node_within_one_second(node: Node, database_url: str) -> None:
    other = make_node(database_url, node.clock)
    other.services.system.unseal(PASSPHRASE)
    assert other.services.system.sealed() is False
    node.services.system.seal()
    assert node.services.system.sealed() is True
    started = time.monotonic()
    while not other.services.system.sealed():
        assert time.monotonic() - started < 1.5, "the other node did not seal"
        time.sleep(0.05)
    assert other.services.deps.custody.sealed and len(other.services.deps.custody.handles) == 0
    # Unsealing a node again takes the new generation: it stays unsealed.
    other.services.system.unseal(PASSPHRASE)
    time.sleep(1.1)
    assert other.services.system.sealed() is False
    other.services.deps.engine.dispose()
