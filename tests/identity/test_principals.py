"""Principals: validation, reserved names, separation of duties, self-change, deletion,
disabling, the last-security-officer guard and dual control on role assignment."""

from __future__ import annotations

import pytest

from keykeeper.errors import (
    AlreadyExists,
    ApprovalRequired,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from tests.identity.conftest import make_caller, root, unique
from tests.integration.conftest import Node


def test_root_is_reserved_in_any_case(node: Node) -> None:
    p = node.services.identity.principals
    for name in ("root", "Root", "ROOT"):
        with pytest.raises(InvalidArgument, match="reserved"):
            p.create(root(node), name=name)
    with pytest.raises(NotFound, match="break-glass"):
        p.get(root(node), "root")


@pytest.mark.parametrize("fields", [
    {"kind": "robot"},
    {"roles": ["no-such-role"]},
    {"metadata": {f"k{i}": "v" for i in range(65)}},
    {"metadata": {"bad key": "v"}},
    {"metadata": {"k": "x" * 257}},
    {"metadata": {"k": "line\nbreak"}},
    {"certificate_subjects": ["not a dn"]},
    {"certificate_subjects": ["DNS:bad name"]},
    {"certificate_subjects": ["IP:999.1.1.1"]},
    {"rate_limit": 0},
    {"rate_limit": -1.0},
    {"rate_limit": float("inf")},
])
def test_bad_fields_are_refused(node: Node, fields: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        node.services.identity.principals.create(root(node), name=unique("bad"),
                                                 **fields)  # type: ignore[arg-type]


def test_bad_names(node: Node) -> None:
    for name in ("", "a b", "x" * 129, "semi;colon"):
        with pytest.raises(InvalidArgument):
            node.services.identity.principals.create(root(node), name=name)


def test_create_canonicalizes_and_lists(node: Node) -> None:
    p = node.services.identity.principals
    name = unique("svc")
    made = p.create(root(node), name=name, kind="service", roles=["application"],
                    metadata={"tenant": "t1"},
                    certificate_subjects=[f"cn={name}, O=Example", f"DNS:{name}.Example.",
                                          "IP:0:0:0:0:0:0:0:1", f"URI:spiffe://corp/{name}"],
                    rate_limit=5)
    assert made.certificate_subjects == (f"CN={name},O=Example", f"DNS:{name}.example",
                                         "IP:::1", f"URI:spiffe://corp/{name}")
    assert made.created_by == "root" and made.rate_limit == 5.0
    assert p.get(root(node), name) == made
    assert name in [x.name for x in p.list(root(node), role="application")]
    assert name not in [x.name for x in p.list(root(node), role="auditor")]
    with pytest.raises(AlreadyExists):
        p.create(root(node), name=name)
    with pytest.raises(AlreadyExists, match="already maps"):
        p.create(root(node), name=unique("dup"), certificate_subjects=[f"DNS:{name}.example"])


def test_separation_of_duties_on_assignment(node: Node) -> None:
    p = node.services.identity.principals
    with pytest.raises(PermissionDenied, match=r"crypto-officer.*auditor"):
        p.create(root(node), name=unique("x"), roles=["crypto-officer", "auditor"])
    name = unique("so")
    p.create(root(node), name=name, roles=["security-officer"])
    with pytest.raises(PermissionDenied, match="separation of duties"):
        p.update(root(node), name, {"roles": ["security-officer", "application"]})
    assert p.get(root(node), name).roles == ("security-officer",)


def test_nobody_changes_or_deletes_themselves(node: Node) -> None:
    officer = make_caller(node, ("security-officer",))
    p = node.services.identity.principals
    for changes in ({"roles": ["security-officer", "auditor"]}, {"metadata": {"t": "x"}},
                    {"disabled": True}):
        with pytest.raises(PermissionDenied, match="itself"):
            p.update(officer.ctx(node), officer.name, changes)
    with pytest.raises(PermissionDenied, match="itself"):
        p.delete(officer.ctx(node), officer.name)


def test_permission_is_named(node: Node) -> None:
    app = make_caller(node, ("application",))
    p = node.services.identity.principals
    with pytest.raises(PermissionDenied, match=r"'principal\.list'"):
        p.list(app.ctx(node))
    with pytest.raises(PermissionDenied, match=r"'principal\.create'"):
        p.create(app.ctx(node), name=unique("x"))
    with pytest.raises(PermissionDenied, match=r"'sod_policy\.update'"):
        p.set_sod(app.ctx(node), [])


def test_role_assignment_is_under_dual_control(node: Node) -> None:
    officer = make_caller(node, ("security-officer",))
    c1 = make_caller(node, ("key-custodian",))
    c2 = make_caller(node, ("key-custodian",))
    p = node.services.identity.principals
    plain = p.create(officer.ctx(node), name=unique("norole"))  # no roles: no approval
    assert plain.created_by == officer.name
    name = unique("app")
    with pytest.raises(ApprovalRequired) as waiting:
        p.create(officer.ctx(node), name=name, roles=["application"])
    approval_id = waiting.value.approval_id
    assert approval_id
    with pytest.raises(NotFound):
        p.get(officer.ctx(node), name)
    approvals = node.services.approvals
    approvals.approve(c1.ctx(node), approval_id)
    done = approvals.approve(c2.ctx(node), approval_id)
    assert done.state == "executed", done
    made = p.get(officer.ctx(node), name)
    assert made.roles == ("application",) and made.created_by == officer.name
    # A change that keeps the roles passes without approval; one that changes them waits.
    p.update(officer.ctx(node), name, {"roles": ["application"], "kind": "person"})
    with pytest.raises(ApprovalRequired):
        p.update(officer.ctx(node), name, {"roles": []})
    with pytest.raises(ApprovalRequired):
        p.update(officer.ctx(node), name, {"metadata": {"tenant": "t9"}})


def test_disable_and_delete(node: Node) -> None:
    app = make_caller(node, ("application",))
    auth, p = node.services.auth, node.services.identity.principals
    assert auth.authenticate(app.token).name == app.name
    assert p.disable(root(node), app.name).disabled
    with pytest.raises(Unauthenticated):
        auth.authenticate(app.token)
    p.update(root(node), app.name, {"disabled": False})
    assert auth.authenticate(app.token).name == app.name
    node.services.identity.grants.create(root(node), grantee=f"principal:{app.name}",
                                         operations=["encrypt"], key_pattern="x-*")
    gone = p.delete(root(node), app.name)
    assert gone == {"name": app.name, "tokens_revoked": 1, "grants_deleted": 1}
    with pytest.raises(Unauthenticated):
        auth.authenticate(app.token)
    with pytest.raises(NotFound):
        p.delete(root(node), app.name)
    assert node.services.identity.grants.list(root(node),
                                              grantee=f"principal:{app.name}") == []


def test_rate_limit_patch_and_clear(node: Node) -> None:
    p = node.services.identity.principals
    name = unique("rl")
    p.create(root(node), name=name, rate_limit=3)
    assert p.update(root(node), name, {"rate_limit": None}).rate_limit is None
    assert p.update(root(node), name, {"rate_limit": 7.5}).rate_limit == 7.5
    with pytest.raises(InvalidArgument, match="unknown principal field"):
        p.update(root(node), name, {"name": "other"})
    with pytest.raises(NotFound):
        p.update(root(node), unique("nobody"), {"kind": "person"})


def test_last_security_officer_is_kept_once_root_is_gone(fresh_node: Node) -> None:
    node = fresh_node
    ident = node.services.identity
    officer = make_caller(node, ("security-officer",))
    second = make_caller(node, ("security-officer",))
    ident.roles.create(root(node), name="directory-admin", operations=["principal.*"])
    admin = make_caller(node, ("directory-admin",))
    for _ in range(2):  # the default approval policy needs two custodians
        make_caller(node, ("key-custodian",))
    assert ident.tokens.revoke_root(root(node)) == 1
    with pytest.raises(Unauthenticated):
        root(node)
    p = ident.principals
    p.disable(officer.ctx(node), second.name)  # another officer remains: allowed
    for attempt in (lambda: p.delete(admin.ctx(node), officer.name),
                    lambda: p.disable(admin.ctx(node), officer.name)):
        with pytest.raises(FailedPrecondition, match="last enabled security officer"):
            attempt()
    p.update(officer.ctx(node), second.name, {"disabled": False})
    assert p.delete(admin.ctx(node), second.name)["name"] == second.name


def test_role_change_runs_only_on_the_principal_approvers_saw(node: Node) -> None:
    """A role change approved for one principal does not run if its metadata (read by
    grant conditions) was swapped meanwhile, or it was deleted and created again."""
    officer = make_caller(node, ("security-officer",))
    c1 = make_caller(node, ("key-custodian",))
    c2 = make_caller(node, ("key-custodian",))
    p, approvals = node.services.identity.principals, node.services.approvals
    for swap in ("recreate", "metadata"):
        name = unique("mallory")
        p.create(officer.ctx(node), name=name, metadata={"tenant": "evil"})
        with pytest.raises(ApprovalRequired) as waiting:
            p.update(officer.ctx(node), name, {"roles": ["application"]})
        request = approvals.get(c1.ctx(node), waiting.value.approval_id or "")
        assert "tenant=evil" in request.summary
        if swap == "recreate":
            p.delete(officer.ctx(node), name)
            p.create(officer.ctx(node), name=name, metadata={"tenant": "acme"})
        else:  # metadata changes wait for approval too; root makes one at once
            p.update(root(node), name, {"metadata": {"tenant": "acme"}})
        approvals.approve(c1.ctx(node), waiting.value.approval_id or "")
        done = approvals.approve(c2.ctx(node), waiting.value.approval_id or "")
        assert done.state == "failed" and done.error_code == "failed_precondition", done
        assert p.get(officer.ctx(node), name).roles == ()
