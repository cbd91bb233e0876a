"""Who may make a token for whom: a principal makes its own without any permission; a
token for another principal (which acts as that principal) waits for dual control, shows
the approvers whom and which roles it would act as, and once approved is kept wrapped
until its requester claims it, once. Service layer and REST, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from keykeeper.errors import (
    ApprovalRequired,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)
from keykeeper.store.schema import approvals as approvals_table
from keykeeper.store.schema import metadata
from tests.identity.conftest import Api, Caller, make_caller, root
from tests.integration.conftest import Node


def dump_store(node: Node) -> str:
    """Every value of every row of every table, as text."""
    parts: list[str] = []
    with node.services.deps.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.extend(repr(v) for v in row)
    return "\n".join(parts)


def stored_result(node: Node, approval_id: str) -> dict[str, object]:
    with node.services.deps.engine.connect() as conn:
        raw = conn.execute(select(approvals_table.c.result)
                           .where(approvals_table.c.id == approval_id)).scalar_one()
    value: dict[str, object] = json.loads(raw)
    return value


def custodians(node: Node, n: int = 2) -> list[Caller]:
    return [make_caller(node, ("key-custodian",)) for _ in range(n)]


# -- self-service ------------------------------------------------------------------------------
def test_a_principal_makes_its_own_tokens_without_permission(node: Node) -> None:
    t = node.services.identity.tokens
    app = make_caller(node, ("application",))
    made = t.create(app.ctx(node), principal=app.name, ttl="1h", display_name="rotated")
    assert made.info.created_by == app.name and made.info.ttl == 3600
    assert node.services.auth.authenticate(made.token).name == app.name
    with pytest.raises(InvalidArgument, match="at most"):
        t.create(app.ctx(node), principal=app.name, ttl="400d")
    with pytest.raises(InvalidArgument, match="at least 60 seconds"):
        t.create(app.ctx(node), principal=app.name, ttl=0)
    # Nothing waited for approval.
    assert node.services.approvals.list_approvals(app.ctx(node))[0] == []


def test_a_token_for_another_needs_token_create(node: Node) -> None:
    app = make_caller(node, ("application",))
    other = make_caller(node, ("application",))
    with pytest.raises(PermissionDenied, match=r"'token\.create'"):
        node.services.identity.tokens.create(app.ctx(node), principal=other.name)


def test_root_issues_at_once(node: Node) -> None:
    app = make_caller(node, ("application",))
    made = node.services.identity.tokens.create(root(node), principal=app.name)
    assert node.services.auth.authenticate(made.token).name == app.name


# -- dual control and the claim -----------------------------------------------------------------
def test_officer_token_for_a_custodian_waits_and_is_claimed_once(node: Node) -> None:
    ident, approvals = node.services.identity, node.services.approvals
    officer = make_caller(node, ("security-officer",))
    c1, c2, c3 = custodians(node, 3)
    target = make_caller(node, ("key-custodian",), certificate_subjects=[])
    before = {x.accessor for x in ident.tokens.list(root(node), principal=target.name)}

    with pytest.raises(ApprovalRequired) as waiting:
        ident.tokens.create(officer.ctx(node), principal=target.name, ttl="1d",
                            display_name="handover")
    approval_id = str(waiting.value.approval_id)
    pending = approvals.get(c1.ctx(node), approval_id)
    assert (pending.operation, pending.requester) == ("token.create", officer.name)
    assert f"principal '{target.name}'" in pending.summary
    assert "key-custodian" in pending.summary and "1 day" in pending.summary
    assert {k: v for k, v in pending.arguments.items() if k != "expect"} == {
        "principal": target.name, "ttl": 86400, "display_name": "handover",
        "roles": ["key-custodian"]}
    assert pending.arguments["expect"]["roles"] == ["key-custodian"]
    assert {x.accessor for x in ident.tokens.list(root(node),
                                                  principal=target.name)} == before
    with pytest.raises(FailedPrecondition, match="pending"):
        approvals.claim(officer.ctx(node), approval_id)

    approvals.approve(c1.ctx(node), approval_id)
    done = approvals.approve(c2.ctx(node), approval_id)  # this vote runs it
    assert done.state == "executed", done
    assert done.result is not None
    assert done.result["token"] == "[withheld]" and done.result["claim"] == "available"
    assert done.result["principal"] == target.name
    assert set(done.result) == {"token", "accessor", "principal", "display_name",
                                "expires_at", "ttl", "claim"}
    accessor = done.result["accessor"]
    issued = {x.accessor: x for x in ident.tokens.list(root(node), principal=target.name)}
    assert issued[accessor].created_by == officer.name  # issued as the requester
    # The row holds the secret wrapped only; nobody sees even the wrapped form.
    assert "_sealed_secret" in stored_result(node, approval_id)
    seen = [done, approvals.get(officer.ctx(node), approval_id),
            approvals.get(c3.ctx(node), approval_id),
            *approvals.list_approvals(c3.ctx(node))[0]]
    assert all("_sealed_secret" not in (a.result or {}) for a in seen)
    snapshot = dump_store(node)

    with pytest.raises(PermissionDenied, match="requester"):
        approvals.claim(c2.ctx(node), approval_id)
    with pytest.raises(PermissionDenied, match="requester"):
        approvals.claim(target.ctx(node), approval_id)
    claimed = approvals.claim(officer.ctx(node), approval_id)
    token = str(claimed["token"])
    assert token.startswith("kk.") and len(token) >= 43
    assert (claimed["accessor"], claimed["principal"]) == (accessor, target.name)
    assert claimed["expires_at"] == done.result["expires_at"]
    assert token not in snapshot  # never stored in clear
    assert all(token not in repr(a) for a in seen)
    assert node.services.auth.authenticate(token).name == target.name

    with pytest.raises(FailedPrecondition, match="already claimed"):
        approvals.claim(officer.ctx(node), approval_id)
    after = stored_result(node, approval_id)
    assert "_sealed_secret" not in after and after["claim"] == "claimed"
    assert token not in dump_store(node)
    assert approvals.get(officer.ctx(node), approval_id).result == after


def test_roles_changed_before_execution_fail_the_request(node: Node) -> None:
    ident, approvals = node.services.identity, node.services.approvals
    officer = make_caller(node, ("security-officer",))
    c1, c2 = custodians(node)
    target = make_caller(node, ("application",))
    with pytest.raises(ApprovalRequired) as waiting:
        ident.tokens.create(officer.ctx(node), principal=target.name)
    approval_id = str(waiting.value.approval_id)
    ident.principals.update(root(node), target.name, {"roles": ["auditor"]})
    approvals.approve(c1.ctx(node), approval_id)
    failed = approvals.approve(c2.ctx(node), approval_id)
    assert (failed.state, failed.error_code) == ("failed", "failed_precondition")
    assert "changed" in (failed.error_detail or "")
    assert [x.accessor for x in ident.tokens.list(root(node), principal=target.name)] == [
        target.accessor]
    with pytest.raises(FailedPrecondition, match="failed"):
        approvals.claim(officer.ctx(node), approval_id)


def test_claim_of_a_request_without_a_secret_is_refused(node: Node) -> None:
    officer = make_caller(node, ("security-officer",))
    c1, c2 = custodians(node)
    with pytest.raises(ApprovalRequired) as waiting:
        node.services.identity.roles.update(officer.ctx(node), "auditor",
                                            description="reads the trail (claim test)")
    approval_id = str(waiting.value.approval_id)
    node.services.approvals.approve(c1.ctx(node), approval_id)
    assert node.services.approvals.approve(c2.ctx(node), approval_id).state == "executed"
    with pytest.raises(FailedPrecondition, match="no secret"):
        node.services.approvals.claim(officer.ctx(node), approval_id)


def test_certificate_subjects_are_under_dual_control(node: Node) -> None:
    p = node.services.identity.principals
    officer = make_caller(node, ("security-officer",))
    c1, c2 = custodians(node)
    app = make_caller(node, ("application",))
    subject = f"DNS:{app.name}.example"
    with pytest.raises(ApprovalRequired) as waiting:
        p.update(officer.ctx(node), app.name, {"certificate_subjects": [subject]})
    approval_id = str(waiting.value.approval_id)
    pending = node.services.approvals.get(c1.ctx(node), approval_id)
    assert subject in pending.summary and "application" in pending.summary
    assert p.get(root(node), app.name).certificate_subjects == ()
    node.services.approvals.approve(c1.ctx(node), approval_id)
    assert node.services.approvals.approve(c2.ctx(node), approval_id).state == "executed"
    assert p.get(root(node), app.name).certificate_subjects == (subject,)
    # The same subjects again: nothing changes, nothing waits.
    p.update(officer.ctx(node), app.name, {"certificate_subjects": [subject],
                                           "kind": "person"})
    with pytest.raises(ApprovalRequired):
        p.update(officer.ctx(node), app.name, {"certificate_subjects": []})
    # Creating with roles and certificate subjects waits, and says which subjects.
    name = "cert-" + app.name
    with pytest.raises(ApprovalRequired) as waiting:
        p.create(officer.ctx(node), name=name, roles=["application"],
                 certificate_subjects=[f"CN={name},O=Example"])
    summary = node.services.approvals.get(c1.ctx(node),
                                          str(waiting.value.approval_id)).summary
    assert f"CN={name},O=Example" in summary and "application" in summary


# -- REST ----------------------------------------------------------------------------------------
def test_rest_issuance_approval_and_claim(api: Api) -> None:
    node = api.node
    officer = api.caller(("security-officer",))
    c1, c2 = custodians(node)
    target = api.caller(("key-custodian",))
    r = api.post("/v1/tokens", {"principal": target.name, "ttl": "2h"}, token=officer.token)
    assert r.status_code == 202, r.text
    approval_id = r.json()["approval_id"]
    r = api.post(f"/v1/approvals/{approval_id}/claim", token=officer.token)
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition")
    first = api.post(f"/v1/approvals/{approval_id}/approve", token=c1.token)
    ran = api.post(f"/v1/approvals/{approval_id}/approve", token=c2.token)
    assert ran.status_code == 200 and ran.json()["state"] == "executed", ran.text
    shown = api.get(f"/v1/approvals/{approval_id}", token=officer.token)
    listed = api.get("/v1/approvals", token=c1.token)
    for answer in (first, ran, shown, listed):
        assert "_sealed_secret" not in answer.text and '"kk.' not in answer.text
    r = api.post(f"/v1/approvals/{approval_id}/claim", token=c2.token)
    assert (r.status_code, r.json()["code"]) == (403, "permission_denied")
    r = api.post(f"/v1/approvals/{approval_id}/claim", token=officer.token)
    assert r.status_code == 200, r.text
    claimed = r.json()
    assert set(claimed) >= {"token", "accessor", "principal", "expires_at"}
    assert claimed["principal"] == target.name and claimed["ttl"] == 7200
    for answer in (first, ran, shown, listed):
        assert claimed["token"] not in answer.text
    me = api.get("/v1/tokens/self", token=claimed["token"]).json()
    assert (me["principal"], me["accessor"]) == (target.name, claimed["accessor"])
    r = api.post(f"/v1/approvals/{approval_id}/claim", token=officer.token)
    assert (r.status_code, r.json()["code"]) == (409, "failed_precondition")
    r = api.post("/v1/approvals/ap-nothing/claim", token=officer.token)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


@pytest.mark.parametrize("ttl", [0, 5, "0", "30s", -1])
def test_rest_ttl_errors_are_one_rule(api: Api, ttl: int | str) -> None:
    app = api.caller(("application",))
    r = api.post("/v1/tokens", {"principal": app.name, "ttl": ttl}, token=app.token)
    assert (r.status_code, r.json()["detail"]) == (400, "ttl must be at least 60 seconds")


def test_an_approved_token_follows_only_the_principal_approvers_saw(node: Node) -> None:
    """Metadata swapped before it runs: it fails. Roles changed after it ran: the claim is
    refused and the token revoked, never handed over."""
    ident, approvals = node.services.identity, node.services.approvals
    officer = make_caller(node, ("security-officer",))
    c1, c2 = custodians(node, 2)
    target = make_caller(node, ("application",))
    p = ident.principals

    with pytest.raises(ApprovalRequired) as waiting:
        ident.tokens.create(officer.ctx(node), principal=target.name, ttl="1h")
    first = str(waiting.value.approval_id)
    p.update(root(node), target.name, {"metadata": {"tenant": "victim"}})
    approvals.approve(c1.ctx(node), first)
    done = approvals.approve(c2.ctx(node), first)
    assert (done.state, done.error_code) == ("failed", "failed_precondition"), done

    with pytest.raises(ApprovalRequired) as waiting:
        ident.tokens.create(officer.ctx(node), principal=target.name, ttl="1h")
    second = str(waiting.value.approval_id)
    approvals.approve(c1.ctx(node), second)
    assert approvals.approve(c2.ctx(node), second).state == "executed"
    accessor = str(stored_result(node, second)["accessor"])
    p.update(root(node), target.name, {"roles": ["application", "key-custodian"]})
    with pytest.raises(FailedPrecondition, match="revoked"):
        approvals.claim(officer.ctx(node), second)
    info = [t for t in ident.tokens.list(root(node), principal=target.name)
            if t.accessor == accessor]
    assert info and info[0].revoked_at is not None
