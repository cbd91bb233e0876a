"""Dual control in-process, on SQLite and PostgreSQL: approve (runs once, as the requester),
reject, expire, self-approval refused, non-custodians refused, duplicate votes refused,
a disabled requester, concurrent approvals, the policy and its own gate."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from keykeeper.errors import (
    AlreadyExists,
    ApprovalRequired,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from keykeeper.service.approval_policy import DEFAULT_OPERATIONS, DEFAULT_POLICY
from keykeeper.service.keys import CreateKey
from tests.approvals.conftest import Team


def _request_delete(team: Team, name: str = "team-a", keys: int = 2) -> str:
    """A namespace with ``keys`` keys, and a pending request of 'so' to delete it."""
    svc = team.svc
    svc.namespaces.create(team.who("so"), name)
    for n in range(keys):
        svc.keys.create(team.root(), CreateKey(name=f"k{n}", namespace=name))
    with pytest.raises(ApprovalRequired) as info:
        svc.namespaces.delete(team.who("so"), name)
    assert info.value.approval_id
    return str(info.value.approval_id)


def _destroy_events(team: Team, key_id: str) -> list[dict[str, Any]]:
    with team.svc.deps.reading() as conn:
        return [e for e in team.svc.deps.keys.events(conn, key_id) if e["action"] == "destroy"]


def _key_ids(team: Team, namespace: str) -> list[str]:
    from keykeeper.store.namespaces import NamespaceRepository

    with team.svc.deps.reading() as conn:
        return NamespaceRepository().key_ids(conn, namespace)


def test_default_policy_covers_the_sensitive_operations() -> None:
    for op in ("key.destroy_version", "key.schedule_destruction", "key.compromise",
               "key.export", "grant.create", "grant.delete", "role.update",
               "principal.update", "token.create", "audit.config", "backup.restore",
               "namespace.delete", "approval_policy.update", "sod_policy.update"):
        rule = DEFAULT_POLICY.rule_for(op)
        assert rule is not None and rule.required == 2, op
        assert rule.approver_roles == ("key-custodian",) and rule.expiry_seconds == 86400
    assert DEFAULT_POLICY.rule_for("encrypt") is None
    assert DEFAULT_POLICY.rule_for("key.rotate") is None
    assert len(DEFAULT_OPERATIONS) == len(set(DEFAULT_OPERATIONS))


def test_approve_runs_once_as_the_requester(team: Team) -> None:
    svc = team.svc
    approval_id = _request_delete(team)
    pending = svc.approvals.get(team.who("c1"), approval_id)
    assert (pending.state, pending.requester, pending.required) == ("pending", "so", 2)
    assert pending.operation == "namespace.delete" and pending.namespace == "team-a"
    assert pending.arguments == {"namespace": "team-a"}
    assert svc.namespaces.get(team.root(), "team-a").keys == 2  # nothing happened yet

    ctx1 = team.who("c1")
    first = svc.approvals.approve(ctx1, approval_id, "ok by me")
    assert (first.state, first.approvals) == ("pending", 1)
    assert ctx1.approval_id == approval_id
    assert svc.namespaces.get(team.root(), "team-a").keys == 2

    ctx2 = team.who("c2")
    done = svc.approvals.approve(ctx2, approval_id)
    assert done.state == "executed", done
    assert done.result is not None and done.result["keys_destroyed"] == 2
    assert [v.principal for v in done.votes] == ["c1", "c2"]
    assert done.votes[0].comment == "ok by me"
    # The approving call's context names what ran, for its audit record.
    assert (ctx2.approval_id, ctx2.namespace) == (approval_id, "team-a")
    with pytest.raises(NotFound):
        svc.namespaces.get(team.root(), "team-a")
    for key_id in _key_ids(team, "team-a"):
        events = _destroy_events(team, key_id)
        assert len(events) == 1 and events[0]["principal"] == "so"  # as the requester
    # Decided: no more votes, and it never runs again.
    with pytest.raises(FailedPrecondition):
        svc.approvals.approve(team.who("c3"), approval_id)
    assert svc.approvals.get(team.who("so"), approval_id).state == "executed"


def test_one_rejection_rejects(team: Team) -> None:
    svc = team.svc
    approval_id = _request_delete(team)
    svc.approvals.approve(team.who("c1"), approval_id)
    rejected = svc.approvals.reject(team.who("c2"), approval_id, "not today")
    assert rejected.state == "rejected" and rejected.decided_at is not None
    assert [(v.principal, v.decision) for v in rejected.votes] == [("c1", "approve"),
                                                                    ("c2", "reject")]
    with pytest.raises(FailedPrecondition):
        svc.approvals.approve(team.who("c3"), approval_id)
    assert svc.namespaces.get(team.root(), "team-a").keys == 2


def test_expired_requests_take_no_votes(team: Team) -> None:
    svc = team.svc
    approval_id = _request_delete(team)
    other = _request_delete(team, "team-b", keys=0)
    svc.approvals.approve(team.who("c1"), approval_id)
    team.node.clock.advance(hours=24, seconds=1)
    assert svc.approvals.get(team.who("c1"), other).state == "expired"  # shown at once
    with pytest.raises(FailedPrecondition, match="expired"):
        svc.approvals.approve(team.who("c2"), approval_id)
    assert svc.approvals.get(team.who("c2"), approval_id).state == "expired"
    assert svc.approvals.expire_due() == 1  # the other one; the first is recorded already
    assert svc.approvals.expire_due() == 0
    found, _ = svc.approvals.list_approvals(team.who("aud"), state="expired")
    assert {a.id for a in found} == {approval_id, other}
    assert svc.namespaces.get(team.root(), "team-a").keys == 2


def test_requester_never_votes(team: Team) -> None:
    svc = team.svc
    both = team.add("both", ("security-officer", "key-custodian"))
    svc.namespaces.create(both, "mine")
    with pytest.raises(ApprovalRequired) as info:
        svc.namespaces.delete(both, "mine")
    approval_id = str(info.value.approval_id)
    for vote in (svc.approvals.approve, svc.approvals.reject):
        with pytest.raises(PermissionDenied, match="requester"):
            vote(team.who("both"), approval_id)
    assert svc.approvals.get(team.who("both"), approval_id).votes == ()


def test_only_approver_roles_vote(team: Team) -> None:
    svc = team.svc
    approval_id = _request_delete(team)
    for name in ("aud", "co", "app"):  # lack approval.approve
        with pytest.raises(PermissionDenied):
            svc.approvals.approve(team.who(name), approval_id)
    # approval.approve without an approver role of the rule is not enough either
    from keykeeper.authz.model import Role

    with svc.deps.transaction() as conn:
        now = team.node.clock()
        svc.deps.identity.insert_role(conn, Role(name="voter", description="",
                                                 operations=("approval.*",), created_at=now,
                                                 updated_at=now))
    team.add("voter1", ("voter",))
    with pytest.raises(PermissionDenied, match="key-custodian"):
        svc.approvals.approve(team.who("voter1"), approval_id)
    with pytest.raises(PermissionDenied):
        svc.approvals.approve(team.root(), approval_id)  # root bypasses, never votes
    assert svc.approvals.get(team.who("c1"), approval_id).votes == ()


def test_one_vote_per_principal(team: Team) -> None:
    svc = team.svc
    approval_id = _request_delete(team)
    svc.approvals.approve(team.who("c1"), approval_id)
    with pytest.raises(AlreadyExists):
        svc.approvals.approve(team.who("c1"), approval_id)
    with pytest.raises(AlreadyExists):
        svc.approvals.reject(team.who("c1"), approval_id)
    a = svc.approvals.get(team.who("c1"), approval_id)
    assert (a.state, a.approvals) == ("pending", 1)


def test_disabled_requester_fails_the_request(team: Team) -> None:
    svc = team.svc
    approval_id = _request_delete(team)
    svc.approvals.approve(team.who("c1"), approval_id)
    team.set_disabled("so")
    failed = svc.approvals.approve(team.who("c2"), approval_id)
    assert failed.state == "failed" and failed.error_code == "failed_precondition"
    assert "disabled" in (failed.error_detail or "")
    assert svc.namespaces.get(team.root(), "team-a").keys == 2


def test_requester_permissions_are_checked_again_at_execution(team: Team) -> None:
    svc = team.svc
    approval_id = _request_delete(team)
    from keykeeper.authz.model import Principal

    with svc.deps.transaction() as conn:  # 'so' loses the security-officer role meanwhile
        p = svc.deps.identity.get_principal(conn, "so")
        assert p is not None
        svc.deps.identity.update_principal(conn, Principal(
            name="so", kind=p.kind, roles=("auditor",), created_by="test",
            created_at=p.created_at, updated_at=team.node.clock()))
    svc.authz.invalidate()
    svc.approvals.approve(team.who("c1"), approval_id)
    failed = svc.approvals.approve(team.who("c2"), approval_id)
    assert (failed.state, failed.error_code) == ("failed", "permission_denied")
    assert svc.namespaces.get(team.root(), "team-a").keys == 2


def test_concurrent_approvals_execute_once(team: Team) -> None:
    svc = team.svc
    for n in range(4, 9):
        team.add(f"c{n}", ("key-custodian",))
    voters = ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"]
    for round_ in range(3):
        approval_id = _request_delete(team, f"race-{round_}", keys=1)
        contexts = {v: team.who(v) for v in voters}
        barrier = threading.Barrier(len(voters))
        outcomes: dict[str, str] = {}

        def vote(name: str, approval_id: str = approval_id,
                 barrier: threading.Barrier = barrier, outcomes: dict[str, str] = outcomes,
                 contexts: dict[str, Any] = contexts) -> None:
            barrier.wait()
            try:
                outcomes[name] = svc.approvals.approve(contexts[name], approval_id).state
            except (FailedPrecondition, AlreadyExists) as exc:
                outcomes[name] = exc.code

        threads = [threading.Thread(target=vote, args=(v,)) for v in voters]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # Two votes count (the second runs the operation); every later one is refused
        # because the request is decided. The first voter's answer shows whatever state
        # the request reached by the time it was read back.
        states = sorted(outcomes.values())
        assert states.count("failed_precondition") == len(voters) - 2, outcomes
        assert "executed" in states, outcomes
        final = svc.approvals.get(team.who("c1"), approval_id)
        assert final.state == "executed" and final.approvals == 2
        (key_id,) = _key_ids(team, f"race-{round_}")
        assert len(_destroy_events(team, key_id)) == 1


def test_destroy_version_only_after_m_approvals(team: Team) -> None:
    """The crypto officer's destroy waits for two custodians, then destroys, once."""
    svc = team.svc
    if svc.keys.gate is None:  # until build_services wires key operations to the gate
        svc.keys.gate = svc.approvals.gate
    if "key.destroy_version" not in svc.approvals.registered():
        svc.approvals.register("key.destroy_version", lambda ctx, a: {
            "version": svc.keys.destroy_version(ctx, a["key"], a["version"]).version})
    co = team.who("co")
    key = svc.keys.create(co, CreateKey(name="old"))
    ct = svc.crypto.encrypt(team.root(), "old", b"v1 data").ciphertext
    svc.keys.rotate(co, "old")
    with pytest.raises(ApprovalRequired) as info:
        svc.keys.destroy_version(co, "old", 1)
    approval_id = str(info.value.approval_id)
    assert svc.approvals.get(co, approval_id).key_id == key.id

    def material() -> bytes | None:
        with svc.deps.reading() as conn:
            return svc.deps.keys.wrapped_material(conn, key.id, 1)

    svc.approvals.approve(team.who("c1"), approval_id)
    assert material() is not None
    assert svc.crypto.decrypt(team.root(), "old", ct)[0] == b"v1 data"
    done = svc.approvals.approve(team.who("c2"), approval_id)
    assert done.state == "executed", done
    assert material() is None
    with svc.deps.reading() as conn:
        events = [e for e in svc.deps.keys.events(conn, key.id)
                  if e["action"] == "destroy-version"]
    assert len(events) == 1 and events[0]["principal"] == "co"
    with pytest.raises(FailedPrecondition):
        svc.crypto.decrypt(team.root(), "old", ct)


def test_root_bypasses_and_ungated_operations_pass(team: Team) -> None:
    svc = team.svc
    svc.approvals.gate(team.root(), "namespace.delete", {"namespace": "x"}, summary="s")
    svc.approvals.gate(team.who("co"), "key.rotate", {"key": "x"}, summary="s")
    svc.namespaces.create(team.root(), "gone")
    erased = svc.namespaces.delete(team.root(), "gone")  # no approval for root
    assert erased.name == "gone"
    found, _ = svc.approvals.list_approvals(team.root())
    assert found == []


def test_gate_refuses_secrets_and_operations_without_executor(team: Team) -> None:
    svc = team.svc
    with pytest.raises(InvalidArgument, match="passphrase"):
        svc.approvals.gate(team.who("so"), "namespace.delete",
                           {"namespace": "x", "unseal_passphrase": "p"}, summary="s")
    with pytest.raises(Internal):
        svc.approvals.gate(team.who("so"), "namespace.delete",
                           {"namespace": "x", "blob": b"raw"}, summary="s")
    with pytest.raises(Internal):
        svc.approvals.gate(team.who("so"), "audit.config", {"file": "f"}, summary="s")
    assert svc.approvals.list_approvals(team.root())[0] == []
    # Caller data nested in an argument (labels, metadata) is not an argument name.
    with pytest.raises(ApprovalRequired):
        svc.approvals.gate(team.who("so"), "namespace.delete",
                           {"namespace": "x", "labels": {"secret_level": "high"}}, summary="s")


def test_results_withhold_secret_fields(team: Team) -> None:
    svc = team.svc
    svc.approvals.register("audit.config", lambda ctx, a: {
        "restored": True, "unseal_passphrase": "hunter2", "nested": [{"token": "t"}]})
    with pytest.raises(ApprovalRequired) as info:
        svc.approvals.gate(team.who("so"), "audit.config", {"file": "b.kkb"},
                           summary="restore")
    approval_id = str(info.value.approval_id)
    svc.approvals.approve(team.who("c1"), approval_id)
    done = svc.approvals.approve(team.who("c2"), approval_id)
    assert done.result == {"restored": True, "unseal_passphrase": "[withheld]",
                           "nested": [{"token": "[withheld]"}]}


def test_who_sees_which_requests(team: Team) -> None:
    svc = team.svc
    mine = _request_delete(team)
    svc.namespaces.create(team.root(), "other")
    other_requester = team.add("so2", ("security-officer",))
    with pytest.raises(ApprovalRequired) as info:
        svc.namespaces.delete(other_requester, "other")
    theirs = str(info.value.approval_id)
    # approval.list holders see all; filters work
    found, _ = svc.approvals.list_approvals(team.who("c1"), state="pending")
    assert {a.id for a in found} == {mine, theirs}
    found, _ = svc.approvals.list_approvals(team.who("aud"), requester="so2")
    assert [a.id for a in found] == [theirs]
    # an application sees only its own (none), and may not ask for others'
    assert svc.approvals.list_approvals(team.who("app"))[0] == []
    with pytest.raises(PermissionDenied):
        svc.approvals.list_approvals(team.who("app"), requester="so")
    with pytest.raises(PermissionDenied):
        svc.approvals.get(team.who("app"), mine)
    with pytest.raises(NotFound):
        svc.approvals.get(team.who("c1"), "ap-" + "0" * 32)
    with pytest.raises(InvalidArgument):
        svc.approvals.list_approvals(team.who("c1"), state="melted")
    # pagination, newest first
    page, token = svc.approvals.list_approvals(team.who("c1"), page_size=1)
    assert len(page) == 1 and token
    rest, token2 = svc.approvals.list_approvals(team.who("c1"), page_size=1, page_token=token)
    assert len(rest) == 1 and token2 is None and rest[0].id != page[0].id


def test_policy_update_is_itself_under_dual_control(team: Team) -> None:
    svc = team.svc
    assert svc.approvals.get_policy(team.who("so")) == DEFAULT_POLICY
    new = {"rules": [{"operations": ["namespace.delete", "approval_policy.update"],
                      "required": 1, "expiry_seconds": 3600}]}
    with pytest.raises(ApprovalRequired) as info:
        svc.approvals.set_policy(team.who("so"), new)
    approval_id = str(info.value.approval_id)
    assert svc.approvals.policy() == DEFAULT_POLICY  # not yet
    svc.approvals.approve(team.who("c1"), approval_id)
    done = svc.approvals.approve(team.who("c2"), approval_id)
    assert done.state == "executed", done
    policy = svc.approvals.policy()
    assert [r.required for r in policy.rules] == [1]
    assert policy.rule_for("key.destroy_version") is None
    # Now one custodian is enough to delete a namespace.
    approval_id = _request_delete(team, "quick", keys=0)
    assert svc.approvals.get(team.who("c1"), approval_id).required == 1
    assert svc.approvals.approve(team.who("c1"), approval_id).state == "executed"


@pytest.mark.parametrize("bad", [
    {}, {"rules": "x"}, {"rules": [{"operations": []}]},
    {"rules": [{"operations": ["no.such"]}]},
    {"rules": [{"operations": ["encrypt"], "required": 0}]},
    {"rules": [{"operations": ["encrypt"], "required": True}]},
    {"rules": [{"operations": ["encrypt"], "expiry_seconds": 5}]},
    {"rules": [{"operations": ["encrypt"], "approver_roles": []}]},
    {"rules": [{"operations": ["encrypt"], "approver_roles": ["no-such-role"]}]},
    {"rules": [{"operations": ["encrypt"]}, {"operations": ["encrypt"]}]},
    {"rules": [{"operations": ["encrypt"], "extra": 1}]},
])
def test_bad_policies_are_refused(team: Team, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        team.svc.approvals.set_policy(team.root(), bad)


def test_policy_needs_its_permission(team: Team) -> None:
    with pytest.raises(PermissionDenied):
        team.svc.approvals.get_policy(team.who("app"))
    with pytest.raises(PermissionDenied):
        team.svc.approvals.set_policy(team.who("c1"), {"rules": []})


# -- secrets made by an approved request: wrapped, claimed by the requester once -------------
def _restorer(team: Team, name: str) -> None:
    """``name``, a security officer that may also restore backups (the claims below are
    of test requests under audit.config, and the claim checks that permission)."""
    from keykeeper.authz.model import Role

    svc = team.svc
    with svc.deps.transaction() as conn:
        if svc.deps.identity.get_role(conn, "restorer") is None:
            now = team.node.clock()
            svc.deps.identity.insert_role(conn, Role(
                name="restorer", description="", operations=("audit.config",),
                created_at=now, updated_at=now))
    team.add(name, ("security-officer", "restorer"))


def _secret(tag: str) -> str:
    return "kk.made-" + tag.upper()


def _claimable_request(team: Team, requester: str, tag: str) -> str:
    """An executed request of ``requester`` whose answer holds ``_secret(tag)`` for it."""
    from keykeeper.service.approval_args import Claimable

    svc = team.svc
    if "audit.config" not in svc.approvals.registered():
        svc.approvals.register("audit.config", lambda ctx, a: {
            "token": Claimable(_secret(a["file"])), "accessor": "acc-1", "principal": "p",
            "expires_at": "2030-01-01T00:00:00Z", "display_name": "", "ttl": 60})
    with pytest.raises(ApprovalRequired) as info:
        svc.approvals.gate(team.who(requester), "audit.config", {"file": tag},
                           summary="restore")
    approval_id = str(info.value.approval_id)
    svc.approvals.approve(team.who("c1"), approval_id)
    assert svc.approvals.approve(team.who("c2"), approval_id).state == "executed"
    return approval_id


def _row(team: Team, approval_id: str) -> dict[str, Any]:
    from sqlalchemy import select

    from keykeeper.store.schema import approvals

    with team.svc.deps.engine.connect() as conn:
        return dict(conn.execute(select(approvals).where(approvals.c.id == approval_id))
                    .one()._mapping)


def test_claimable_secret_is_wrapped_and_claimed_once(team: Team) -> None:
    svc = team.svc
    _restorer(team, "so-r")
    approval_id = _claimable_request(team, "so-r", "w1")
    row = _row(team, approval_id)
    assert _secret("w1") not in repr(row) and "_sealed_secret" in row["result"]
    for who in ("so-r", "c1", "aud"):
        shown = svc.approvals.get(team.who(who), approval_id)
        assert shown.result is not None and "_sealed_secret" not in shown.result
        assert shown.result["token"] == "[withheld]" and shown.result["claim"] == "available"
    with pytest.raises(PermissionDenied, match="requester"):
        svc.approvals.claim(team.who("c1"), approval_id)
    claimed = svc.approvals.claim(team.who("so-r"), approval_id)
    assert claimed == {"token": _secret("w1"), "accessor": "acc-1", "principal": "p",
                       "expires_at": "2030-01-01T00:00:00Z", "display_name": "", "ttl": 60}
    with pytest.raises(FailedPrecondition, match="already claimed"):
        svc.approvals.claim(team.who("so-r"), approval_id)
    after = _row(team, approval_id)["result"]
    assert "_sealed_secret" not in after and '"claim": "claimed"' in after


def test_claim_needs_the_operation_permission_still(team: Team) -> None:
    approval_id = _claimable_request(team, "aud", "s2")  # an auditor may not configure audit
    with pytest.raises(PermissionDenied, match=r"'audit\.config'"):
        team.svc.approvals.claim(team.who("aud"), approval_id)
    assert "_sealed_secret" in _row(team, approval_id)["result"]  # still there


def test_a_wrapped_secret_is_bound_to_its_request(team: Team) -> None:
    """A wrapped secret copied into another request's row does not open there."""
    from sqlalchemy import update

    from keykeeper.store.schema import approvals

    _restorer(team, "so-r")
    first = _claimable_request(team, "so-r", "first")
    second = _claimable_request(team, "so-r", "second")
    with team.svc.deps.engine.begin() as conn:
        conn.execute(update(approvals).where(approvals.c.id == second)
                     .values(result=_row(team, first)["result"]))
    with pytest.raises(Internal, match="cannot be opened"):
        team.svc.approvals.claim(team.who("so-r"), second)
    assert team.svc.approvals.claim(team.who("so-r"), first)["token"] == _secret("first")


def test_claim_before_execution_and_unknown(team: Team) -> None:
    svc = team.svc
    approval_id = _request_delete(team)
    with pytest.raises(FailedPrecondition, match="pending"):
        svc.approvals.claim(team.who("so"), approval_id)
    svc.approvals.reject(team.who("c1"), approval_id)
    with pytest.raises(FailedPrecondition, match="rejected"):
        svc.approvals.claim(team.who("so"), approval_id)
    with pytest.raises(NotFound):
        svc.approvals.claim(team.who("so"), "ap-" + "0" * 32)


def test_policy_keeps_enough_approvers_once_root_is_gone(team: Team) -> None:
    svc = team.svc
    tight = {"rules": [{"operations": ["namespace.delete"], "required": 4}]}
    with pytest.raises(ApprovalRequired):  # root still active: root could repair it
        svc.approvals.set_policy(team.who("so"), tight)
    assert svc.identity.tokens.revoke_root(team.who("so")) == 1
    with pytest.raises(FailedPrecondition, match=r"'key-custodian'.*1 more missing"):
        svc.approvals.set_policy(team.who("so"), tight)
    with pytest.raises(ApprovalRequired):
        svc.approvals.set_policy(team.who("so"), {"rules": [
            {"operations": ["namespace.delete"], "required": 3}]})
