"""Lifecycle settings in-process, with a clock: pre-active keys, activation, trim's
crypto-erasure and its dual control, namespace defaults, and the PATCH rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from keykeeper.errors import (
    ApprovalRequired,
    FailedPrecondition,
    InvalidArgument,
)
from keykeeper.service.keys import CreateKey
from keykeeper.store.schema import key_versions
from tests.approvals.conftest import Team
from tests.integration.conftest import Node

DAY = 86400


def _events(node: Node, key_id: str, action: str) -> list[dict[str, object]]:
    with node.services.deps.reading() as conn:
        return [e for e in node.services.deps.keys.events(conn, key_id)
                if e["action"] == action]


def _material(node: Node, key_id: str) -> dict[int, bool]:
    with node.services.deps.reading() as conn:
        rows = conn.execute(select(key_versions.c.version, key_versions.c.wrapped_material)
                            .where(key_versions.c.key_id == key_id))
        return {r.version: r.wrapped_material is not None for r in rows}


def test_pre_active_key_refuses_use_until_its_activation_date(node: Node) -> None:
    svc, ctx, clock = node.services, node.ctx(), node.clock
    start = clock() + timedelta(days=2)
    key = svc.keys.create(ctx, CreateKey(name="later", activation_date=start,
                                         rotation_period="30d"))
    assert key.state == "pre-active" and key.activation_date == start
    # A pre-active key's rotation period counts from its activation date.
    assert key.next_rotation_time == start + timedelta(days=30)
    assert _events(node, key.id, "create")[0]["to_state"] == "pre-active"
    with pytest.raises(FailedPrecondition, match="pre-active"):
        svc.crypto.encrypt(node.ctx(), "later", b"x", None, None)
    clock.advance(days=2, seconds=1)
    ct = svc.crypto.encrypt(node.ctx(), "later", b"x", None, None)
    assert svc.crypto.decrypt(node.ctx(), "later", ct.ciphertext, None)[0] == b"x"


def test_activate_now_and_only_once(node: Node) -> None:
    svc, clock = node.services, node.clock
    svc.keys.create(node.ctx(), CreateKey(name="k", activation_date=clock() + timedelta(
        days=10), rotation_period="1d"))
    clock.advance(hours=1)
    key = svc.keys.activate(node.ctx(), "k")
    assert key.state == "active" and key.activation_date == clock()
    assert key.next_rotation_time == clock() + timedelta(days=1)
    assert [e["to_state"] for e in _events(node, key.id, "activate")] == ["active"]
    svc.crypto.encrypt(node.ctx(), "k", b"x", None, None)
    with pytest.raises(FailedPrecondition, match="only a pre-active key"):
        svc.keys.activate(node.ctx(), "k")


def test_activation_date_moved_to_the_past_activates(node: Node) -> None:
    svc, clock = node.services, node.clock
    svc.keys.create(node.ctx(), CreateKey(name="k", activation_date=clock() + timedelta(
        days=10)))
    key = svc.keys.update(node.ctx(), "k", lifecycle={
        "activation_date": clock() - timedelta(days=1)})
    assert key.state == "active" and key.activation_date == clock()
    with pytest.raises(FailedPrecondition, match="only while the key is pre-active"):
        svc.keys.update(node.ctx(), "k", lifecycle={
            "activation_date": clock() + timedelta(days=1)})


def test_deactivation_date_ends_protect_use(node: Node) -> None:
    svc, clock = node.services, node.clock
    svc.keys.create(node.ctx(), CreateKey(name="k", deactivation_date=clock() + timedelta(
        days=1)))
    ct = svc.crypto.encrypt(node.ctx(), "k", b"x", None, None)
    clock.advance(days=1)
    with pytest.raises(FailedPrecondition):
        svc.crypto.encrypt(node.ctx(), "k", b"x", None, None)
    assert svc.crypto.decrypt(node.ctx(), "k", ct.ciphertext, None)[0] == b"x"
    with pytest.raises(FailedPrecondition, match="can no longer change"):
        svc.keys.update(node.ctx(), "k", lifecycle={"deactivation_date": None})


def test_trim_crypto_erases_every_version_below(node: Node) -> None:
    svc = node.services
    key = svc.keys.create(node.ctx(), CreateKey(name="k"))
    old = svc.crypto.encrypt(node.ctx(), "k", b"old", None, None)
    for _ in range(3):
        svc.keys.rotate(node.ctx(), "k")
    with pytest.raises(InvalidArgument, match="min_decryption_version"):
        svc.keys.update(node.ctx(), "k", lifecycle={"min_decryption_version": 3,
                                                    "min_encryption_version": 2})
    svc.keys.update(node.ctx(), "k", lifecycle={"min_decryption_version": 3})
    (event,) = _events(node, key.id, "update")
    assert event["reason"] == "changed: min_decryption_version" and event["principal"] == "root"
    with pytest.raises(InvalidArgument, match="at most the key's min_decryption_version"):
        svc.keys.trim(node.ctx(), "k", 4)
    trimmed = svc.keys.trim(node.ctx(), "k", 3)
    assert {v.version: str(v.state) for v in trimmed.versions} == {
        1: "destroyed", 2: "destroyed", 3: "active", 4: "active"}
    assert _material(node, key.id) == {1: False, 2: False, 3: True, 4: True}
    events = _events(node, key.id, "trim")
    assert [(e["version"], e["to_state"]) for e in events] == [(1, "destroyed"),
                                                                 (2, "destroyed")]
    with pytest.raises(FailedPrecondition):
        svc.crypto.decrypt(node.ctx(), "k", old.ciphertext, None)
    # Idempotent: nothing left below 3, no new events.
    svc.keys.trim(node.ctx(), "k", 3)
    assert len(_events(node, key.id, "trim")) == 2
    with pytest.raises(InvalidArgument, match="primary version"):
        svc.keys.update(node.ctx(), "k", lifecycle={"min_decryption_version": 5})


def test_trim_of_a_compromised_version_is_destroyed_compromised(node: Node) -> None:
    svc = node.services
    key = svc.keys.create(node.ctx(), CreateKey(name="k"))
    svc.keys.rotate(node.ctx(), "k")
    svc.keys.update(node.ctx(), "k", lifecycle={"min_decryption_version": 2})
    svc.keys.compromise(node.ctx(), "k", "leaked")
    trimmed = svc.keys.trim(node.ctx(), "k", 2)
    assert str(trimmed.versions[0].state) == "destroyed-compromised"
    assert _material(node, key.id) == {1: False, 2: True}


def test_trim_is_dual_controlled_for_a_crypto_officer(team: Team) -> None:
    svc = team.svc
    key = svc.keys.create(team.root(), CreateKey(name="k"))
    svc.keys.rotate(team.root(), "k")
    svc.keys.update(team.root(), "k", lifecycle={"min_decryption_version": 2})
    with pytest.raises(ApprovalRequired) as info:
        svc.keys.trim(team.who("co"), "k", 2)
    approval_id = info.value.approval_id
    assert approval_id is not None
    assert _material(team.node, key.id) == {1: True, 2: True}  # nothing happened yet
    pending = svc.approvals.get(team.who("c1"), approval_id)
    assert pending.operation == "key.trim"
    assert pending.arguments == {"key": key.id, "min_available_version": 2}
    svc.approvals.approve(team.who("c1"), approval_id)
    svc.approvals.approve(team.who("c2"), approval_id)
    done = svc.approvals.get(team.who("so"), approval_id)
    assert done.state == "executed" and done.result is not None
    assert [v["state"] for v in done.result["versions"]] == ["destroyed", "active"]
    assert _material(team.node, key.id) == {1: False, 2: True}
    # Run as the requester: the trim events name the crypto officer.
    assert [e["principal"] for e in _events(team.node, key.id, "trim")] == ["co"]


def test_namespace_defaults_apply_to_new_keys(node: Node) -> None:
    svc = node.services
    ns = svc.namespaces.create(node.ctx(), "team", rotation_period="90d",
                               originator_usage_period="365d",
                               recipient_usage_period=3 * 365 * DAY)
    assert (ns.rotation_period, ns.originator_usage_period) == (90 * DAY, 365 * DAY)
    key = svc.keys.create(node.ctx(), CreateKey(name="k", namespace="team"))
    assert key.rotation_period == 90 * DAY
    assert key.next_rotation_time == node.clock() + timedelta(days=90)
    periods = svc.keys.periods_of([key])[key.id]
    assert (periods.originator, periods.recipient) == (365 * DAY, 3 * 365 * DAY)
    own = svc.keys.create(node.ctx(), CreateKey(name="own", namespace="team",
                                                rotation_period="1d"))
    assert own.rotation_period == DAY
    updated = svc.namespaces.update(node.ctx(), "team", rotation_period=None)
    assert updated.rotation_period is None and updated.originator_usage_period == 365 * DAY
    with pytest.raises(InvalidArgument, match="recipient_usage_period must be at least"):
        svc.namespaces.update(node.ctx(), "team", recipient_usage_period="30d")


def test_trim_never_erases_a_version_that_may_still_decrypt(node: Node) -> None:
    # min_decryption_version 0 means every version decrypts: trim refuses until it is raised.
    svc = node.services
    key = svc.keys.create(node.ctx(), CreateKey(name="k"))
    svc.keys.rotate(node.ctx(), "k")
    with pytest.raises(InvalidArgument, match="every version decrypts"):
        svc.keys.trim(node.ctx(), "k", 2)
    assert _material(node, key.id) == {1: True, 2: True}
    svc.keys.trim(node.ctx(), "k", 1)  # nothing below 1: allowed, erases nothing
    assert _material(node, key.id) == {1: True, 2: True}
