"""Administration cannot be locked out for good: the root token is retired only when a
security officer and, for every rule of the approval policy, enough principals able to
approve exist; once it is gone, no disable, delete, role removal, role change or policy
change may leave a rule with fewer approvers than it requires, nor the store without an
enabled security officer."""

from __future__ import annotations

import pytest

from keykeeper.errors import ApprovalRequired, FailedPrecondition, Unauthenticated
from tests.identity.conftest import Caller, make_caller, root
from tests.integration.conftest import Node


def test_revoke_root_needs_enough_approvers_for_every_rule(fresh_node: Node) -> None:
    node = fresh_node
    t, p = node.services.identity.tokens, node.services.identity.principals
    make_caller(node, ("security-officer",))
    make_caller(node, ("key-custodian",))
    root_accessor = t.lookup_self(root(node))["accessor"]
    for attempt in (lambda: t.revoke_root(root(node)),
                    lambda: t.revoke(root(node), root_accessor)):
        with pytest.raises(FailedPrecondition, match=r"'key-custodian'.*1 more missing"):
            attempt()
    c2 = make_caller(node, ("key-custodian",))
    p.disable(root(node), c2.name)  # a disabled custodian approves nothing
    with pytest.raises(FailedPrecondition, match="1 more missing"):
        t.revoke_root(root(node))
    p.update(root(node), c2.name, {"disabled": False})
    # A rule whose approver role cannot vote (auditors lack approval.approve) is unusable.
    make_caller(node, ("auditor",))
    node.services.approvals.set_policy(root(node), {"rules": [
        {"operations": ["namespace.delete"], "required": 1, "approver_roles": ["auditor"]},
        {"operations": ["token.create", "principal.*", "approval_policy.update"]}]})
    with pytest.raises(FailedPrecondition, match=r"'auditor'.*approval\.approve.*1 more"):
        t.revoke_root(root(node))
    node.services.approvals.set_policy(root(node), {"rules": [
        {"operations": ["namespace.delete", "token.create", "principal.*",
                        "approval_policy.update"]}]})
    assert t.revoke_root(root(node)) == 1
    with pytest.raises(Unauthenticated):
        root(node)


def _retired(node: Node) -> tuple[Caller, Caller, list[Caller]]:
    """A security officer, a directory admin (principal.* and role.*) and exactly two
    custodians; then the root token is revoked."""
    ident = node.services.identity
    officer = make_caller(node, ("security-officer",))
    ident.roles.create(root(node), name="directory-admin",
                       operations=["principal.*", "role.*"])
    admin = make_caller(node, ("directory-admin",))
    custodians = [make_caller(node, ("key-custodian",)) for _ in range(2)]
    assert ident.tokens.revoke_root(root(node)) == 1
    return officer, admin, custodians


def test_approvers_are_kept_once_root_is_gone(fresh_node: Node) -> None:
    node = fresh_node
    p, approvals = node.services.identity.principals, node.services.approvals
    officer, admin, (c1, c2) = _retired(node)
    for attempt in (lambda: p.disable(admin.ctx(node), c1.name),
                    lambda: p.delete(admin.ctx(node), c1.name),
                    lambda: p.update(admin.ctx(node), c1.name, {"roles": []}),
                    lambda: p.update(admin.ctx(node), c1.name, {"roles": ["auditor"]})):
        with pytest.raises(FailedPrecondition,
                           match=r"too few approvers.*'key-custodian'.*1 more missing"):
            attempt()
    # Refused before any approval request was filed.
    assert approvals.list_approvals(officer.ctx(node))[0] == []
    assert not p.get(officer.ctx(node), c1.name).disabled
    # A third custodian (through dual control), then one may go.
    with pytest.raises(ApprovalRequired) as waiting:
        # With a certificate subject, someone can act as c3 (no token yet): it counts.
        p.create(officer.ctx(node), name="c3", roles=["key-custodian"],
                 certificate_subjects=["CN=c3"])
    approval_id = str(waiting.value.approval_id)
    approvals.approve(c1.ctx(node), approval_id)
    assert approvals.approve(c2.ctx(node), approval_id).state == "executed"
    assert p.disable(admin.ctx(node), c1.name).disabled
    with pytest.raises(FailedPrecondition, match="too few approvers"):
        p.disable(admin.ctx(node), c2.name)
    # Non-approvers come and go freely.
    app = make_caller_as(node, officer, c2, "c3", "app-x", ("application",))
    assert p.disable(admin.ctx(node), app).disabled
    assert p.delete(admin.ctx(node), app)["name"] == app


def make_caller_as(node: Node, officer: Caller, custodian: Caller, other: str, name: str,
                   roles: tuple[str, ...]) -> str:
    """Create a principal with roles as ``officer``, approved by ``custodian`` and the
    principal named ``other`` (whose context is read from the store)."""
    from keykeeper.service.context import RequestContext

    svc = node.services
    with pytest.raises(ApprovalRequired) as waiting:
        svc.identity.principals.create(officer.ctx(node), name=name, roles=roles)
    approval_id = str(waiting.value.approval_id)
    with svc.deps.reading() as conn:
        voter = svc.deps.identity.get_principal(conn, other)
    svc.approvals.approve(custodian.ctx(node), approval_id)
    done = svc.approvals.approve(RequestContext(interface="test", principal=voter),
                                 approval_id)
    assert done.state == "executed", done
    return name


def test_roles_and_policy_keep_enough_approvers_once_root_is_gone(fresh_node: Node) -> None:
    node = fresh_node
    ident, approvals = node.services.identity, node.services.approvals
    officer, admin, _ = _retired(node)
    # Taking approval.approve from the custodians' role would leave nobody to vote.
    with pytest.raises(FailedPrecondition, match=r"role 'key-custodian'.*too few approvers"):
        ident.roles.update(admin.ctx(node), "key-custodian",
                           operations=["approval.list", "approval.get"])
    # Changing the role otherwise is fine (it waits for approval as usual).
    with pytest.raises(ApprovalRequired):
        ident.roles.update(admin.ctx(node), "key-custodian",
                           operations=["approval.*", "backup.create"])
    # A policy needing three custodians, with two, is refused before it is filed.
    with pytest.raises(FailedPrecondition, match=r"'key-custodian'.*1 more missing"):
        approvals.set_policy(officer.ctx(node), {"rules": [
            {"operations": ["approval_policy.update"], "required": 3}]})
    with pytest.raises(ApprovalRequired):
        approvals.set_policy(officer.ctx(node), {"rules": [
            {"operations": ["approval_policy.update"], "required": 2}]})


def test_last_officer_and_approvers_are_kept_only_without_root(fresh_node: Node) -> None:
    node = fresh_node
    p = node.services.identity.principals
    officer = make_caller(node, ("security-officer",))
    c1 = make_caller(node, ("key-custodian",))
    # While the root token exists, root can repair anything: no guard.
    assert p.disable(root(node), c1.name).disabled
    assert p.disable(root(node), officer.name).disabled


def test_revoking_the_last_approvers_tokens_is_refused(fresh_node: Node) -> None:
    """Only principals someone can act as count: revoking a custodian's last token is a
    lock-out too, and a custodian without any token never counted."""
    node = fresh_node
    tokens = node.services.identity.tokens
    officer, _, (c1, _c2) = _retired(node)
    with pytest.raises(FailedPrecondition, match=r"too few approvers.*1 more missing"):
        tokens.revoke(officer.ctx(node), c1.accessor)
    assert node.services.auth.authenticate(c1.token).name == c1.name
    # Its own token a principal may always revoke (it is leaving on purpose).
    assert tokens.revoke(c1.ctx(node), c1.accessor).revoked_at is not None
