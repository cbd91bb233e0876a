"""Roles, grants and the separation-of-duties policy: validation, built-in roles kept,
held roles kept, no self-grants, grants take effect on key use, policy changes refused
while violated, and dual control on every change."""

from __future__ import annotations

import pytest

from keykeeper.errors import (
    AlreadyExists,
    ApprovalRequired,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from keykeeper.service.keys import CreateKey
from tests.identity.conftest import make_caller, root, unique
from tests.integration.conftest import Node


def test_role_validation_and_lifecycle(node: Node) -> None:
    r = node.services.identity.roles
    name = unique("role")
    with pytest.raises(InvalidArgument, match="unknown operation 'fly'"):
        r.create(root(node), name=name, operations=["encrypt", "fly"])
    with pytest.raises(InvalidArgument):
        r.create(root(node), name=name, operations=[])
    with pytest.raises(InvalidArgument):
        r.create(root(node), name="bad name", operations=["encrypt"])
    made = r.create(root(node), name=name, operations=["encrypt", "key.*", "encrypt"],
                    description="payments")
    assert made.operations == ("encrypt", "key.*") and not made.builtin
    with pytest.raises(AlreadyExists):
        r.create(root(node), name=name, operations=["encrypt"])
    changed = r.update(root(node), name, operations=["decrypt"])
    assert changed.operations == ("decrypt",) and changed.description == "payments"
    assert r.get(root(node), name) == changed
    assert name in [x.name for x in r.list(root(node))]
    node.services.identity.grants.create(root(node), grantee=f"role:{name}",
                                         operations=["decrypt"])
    assert r.delete(root(node), name) == {"name": name, "grants_deleted": 1}
    with pytest.raises(NotFound):
        r.get(root(node), name)


def test_builtin_roles_change_but_stay(node: Node) -> None:
    r = node.services.identity.roles
    builtin = {x.name for x in r.list(root(node)) if x.builtin}
    assert builtin == {"security-officer", "crypto-officer", "key-custodian", "auditor",
                       "application"}
    with pytest.raises(FailedPrecondition, match="built in"):
        r.delete(root(node), "auditor")
    before = r.get(root(node), "auditor")
    r.update(root(node), "auditor", description="reads the trail")
    assert r.get(root(node), "auditor").operations == before.operations
    r.update(root(node), "auditor", description=before.description)


def test_held_role_cannot_be_deleted(node: Node) -> None:
    r = node.services.identity.roles
    name = unique("held")
    r.create(root(node), name=name, operations=["role.update"])
    holder = make_caller(node, (name,))
    with pytest.raises(FailedPrecondition, match=holder.name):
        r.delete(root(node), name)
    with pytest.raises(PermissionDenied, match="may not change a role it holds"):
        r.update(holder.ctx(node), name, operations=["*"])


def test_an_officer_may_not_change_its_own_role(node: Node) -> None:
    officer = make_caller(node, ("security-officer",))
    with pytest.raises(PermissionDenied) as refused:
        node.services.identity.roles.update(officer.ctx(node), "security-officer",
                                            description="mine")
    assert "may not change a role it holds ('security-officer')" in refused.value.detail
    assert "grant" not in refused.value.detail


def test_grant_validation(node: Node) -> None:
    g = node.services.identity.grants
    app = make_caller(node, ("application",))
    cases: list[dict[str, object]] = [
        {"grantee": "someone", "operations": ["encrypt"]},
        {"grantee": "group:x", "operations": ["encrypt"]},
        {"grantee": f"principal:{unique('nobody')}", "operations": ["encrypt"]},
        {"grantee": "role:no-such-role", "operations": ["encrypt"]},
        {"grantee": "principal:root", "operations": ["encrypt"]},
        {"grantee": f"principal:{app.name}", "operations": ["principal.create"]},
        {"grantee": f"principal:{app.name}", "operations": ["encrypt"], "namespace": "a b"},
        {"grantee": f"principal:{app.name}", "operations": ["encrypt"], "key_pattern": "a/b"},
        {"grantee": f"principal:{app.name}", "operations": ["encrypt"],
         "labels": {"bad key": "v"}},
        {"grantee": f"principal:{app.name}", "operations": ["encrypt"],
         "condition": "context.tenant = 'x'"},
        {"grantee": f"principal:{app.name}", "operations": ["encrypt"],
         "condition": "__import__('os')"},
    ]
    for case in cases:
        with pytest.raises(InvalidArgument):
            g.create(root(node), **case)  # type: ignore[arg-type]


def test_nobody_grants_to_themselves(node: Node) -> None:
    officer = make_caller(node, ("security-officer",))
    g = node.services.identity.grants
    with pytest.raises(PermissionDenied, match="itself"):
        g.create(officer.ctx(node), grantee=f"principal:{officer.name}", operations=["*"])
    with pytest.raises(PermissionDenied, match=r"itself|holds"):
        g.create(officer.ctx(node), grantee="role:security-officer", operations=["encrypt"])
    with pytest.raises(PermissionDenied, match=r"'grant\.create'"):
        app = make_caller(node, ("application",))
        g.create(app.ctx(node), grantee="role:application", operations=["encrypt"])


def test_grants_are_under_dual_control_and_take_effect(node: Node) -> None:
    ident = node.services.identity
    officer = make_caller(node, ("security-officer",))
    c1, c2 = (make_caller(node, ("key-custodian",)) for _ in range(2))
    app = make_caller(node, ("application",), metadata={"tenant": "t1"})
    tag = unique("card")
    node.services.keys.create(root(node), CreateKey(name=tag, purpose="encrypt"))
    crypto = node.services.crypto
    with pytest.raises(NotFound):
        crypto.encrypt(app.ctx(node), tag, b"x", {"tenant": "t1"}, None)
    with pytest.raises(ApprovalRequired) as waiting:
        ident.grants.create(officer.ctx(node), grantee=f"principal:{app.name}",
                            operations=["encrypt", "decrypt"], namespace="default",
                            key_pattern="card-*",
                            condition="context.tenant == principal.metadata.tenant")
    assert waiting.value.approval_id is not None
    node.services.approvals.approve(c1.ctx(node), waiting.value.approval_id)
    done = node.services.approvals.approve(c2.ctx(node), waiting.value.approval_id)
    assert done.state == "executed", done
    [grant] = ident.grants.list(officer.ctx(node), grantee=f"principal:{app.name}")
    assert grant.created_by == officer.name and str(grant.condition).startswith("context.")
    assert ident.grants.get(officer.ctx(node), grant.id) == grant
    assert grant in ident.grants.list(officer.ctx(node), namespace="default")
    ct = crypto.encrypt(app.ctx(node), tag, b"x", {"tenant": "t1"}, None)
    assert ct.ciphertext.startswith("keykeeper:")
    with pytest.raises(PermissionDenied, match="condition"):
        crypto.encrypt(app.ctx(node), tag, b"x", {"tenant": "t2"}, None)
    with pytest.raises(ApprovalRequired):
        ident.grants.delete(officer.ctx(node), grant.id)
    assert ident.grants.delete(root(node), grant.id) == {"id": grant.id}
    with pytest.raises(NotFound):
        crypto.encrypt(app.ctx(node), tag, b"x", {"tenant": "t1"}, None)
    with pytest.raises(NotFound):
        ident.grants.delete(root(node), grant.id)
    with pytest.raises(NotFound):
        ident.grants.get(root(node), "not-a-grant-id")


def test_sod_policy(node: Node) -> None:
    p = node.services.identity.principals
    assert p.get_sod(root(node)) == [("crypto-officer", "auditor"),
                                     ("security-officer", "application")]
    both = unique("both")
    p.create(root(node), name=both, roles=["key-custodian", "auditor"])
    with pytest.raises(FailedPrecondition, match=f"{both} \\(key-custodian \\+ auditor\\)"):
        p.set_sod(root(node), [["key-custodian", "auditor"]])
    with pytest.raises(InvalidArgument, match="does not exist"):
        p.set_sod(root(node), [["key-custodian", "no-such-role"]])
    with pytest.raises(InvalidArgument):
        p.set_sod(root(node), [["auditor", "auditor"]])
    p.update(root(node), both, {"roles": ["auditor"]})
    new = p.set_sod(root(node), [["crypto-officer", "auditor"], ["auditor", "crypto-officer"],
                                 ["key-custodian", "auditor"]])
    assert new == [("crypto-officer", "auditor"), ("key-custodian", "auditor")]
    with pytest.raises(PermissionDenied, match=r"key-custodian.*auditor"):
        p.update(root(node), both, {"roles": ["auditor", "key-custodian"]})
    officer = make_caller(node, ("security-officer",))
    with pytest.raises(ApprovalRequired):
        p.set_sod(officer.ctx(node), [])
    assert p.get_sod(officer.ctx(node)) == new
    p.set_sod(root(node), [["crypto-officer", "auditor"], ["security-officer", "application"]])
