"""Tokens: shown once and stored hashed, TTL bounds, expiry, renew (capped), revoke,
self-service without permissions, who-am-I, and retiring the root token."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from keykeeper.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from keykeeper.service.context import RequestContext
from keykeeper.store.schema import tokens
from tests.identity.conftest import make_caller, root, unique
from tests.integration.conftest import ROOT_TOKEN, Node


def test_token_is_shown_once_and_stored_hashed(node: Node) -> None:
    app = make_caller(node, ("application",))
    made = node.services.identity.tokens.create(root(node), principal=app.name, ttl="7d",
                                                display_name="ci runner")
    assert made.token.startswith("kk.") and len(made.token) >= 43
    assert "hidden" in repr(made) and made.token not in repr(made)
    info = made.info
    assert info.accessor.startswith("acc-") and info.ttl == 7 * 86400
    assert info.expires_at == info.created_at + timedelta(days=7)
    with node.services.deps.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(tokens))]
    row = next(r for r in rows if r["accessor"] == info.accessor)
    assert row["token_hash"] == hashlib.sha256(made.token.encode()).hexdigest()
    assert all(made.token not in str(v) for r in rows for v in r.values())
    listed = node.services.identity.tokens.list(root(node), principal=app.name)
    assert {t.accessor for t in listed} == {app.accessor, info.accessor}
    assert node.services.auth.authenticate(made.token).name == app.name


@pytest.mark.parametrize("ttl", [0, 30, "59s", "400d", "soon", -5])
def test_ttl_bounds(node: Node, ttl: int | str) -> None:
    app = make_caller(node, ("application",))
    with pytest.raises(InvalidArgument, match="ttl"):
        node.services.identity.tokens.create(root(node), principal=app.name, ttl=ttl)


@pytest.mark.parametrize("ttl", [0, "0", "0s", 1, 30, "59s", "-5", -5])
def test_a_short_ttl_has_one_rule_and_one_message(node: Node, ttl: int | str) -> None:
    app = make_caller(node, ("application",))
    with pytest.raises(InvalidArgument) as refused:
        node.services.identity.tokens.create(root(node), principal=app.name, ttl=ttl)
    assert refused.value.detail == "ttl must be at least 60 seconds"


def test_create_refusals(node: Node) -> None:
    t = node.services.identity.tokens
    app = make_caller(node, ("application",))
    with pytest.raises(PermissionDenied, match=r"'token\.create'"):
        t.create(app.ctx(node), principal=make_caller(node, ()).name)
    with pytest.raises(InvalidArgument, match="init"):
        t.create(root(node), principal="root")
    with pytest.raises(NotFound):
        t.create(root(node), principal=unique("nobody"))
    off = make_caller(node, ())
    node.services.identity.principals.disable(root(node), off.name)
    with pytest.raises(FailedPrecondition, match="disabled"):
        t.create(root(node), principal=off.name)
    with pytest.raises(InvalidArgument, match="display_name"):
        t.create(root(node), principal=app.name, display_name="x" * 200)


def test_revoked_token_stops_working(node: Node) -> None:
    app = make_caller(node, ("application",))
    auth = node.services.auth
    assert auth.authenticate(app.token).name == app.name
    info = node.services.identity.tokens.revoke(root(node), app.accessor)
    assert info.revoked_at is not None
    with pytest.raises(Unauthenticated):
        auth.authenticate(app.token)
    # Idempotent, and a revoked token cannot be renewed.
    node.services.identity.tokens.revoke(root(node), app.accessor)
    with pytest.raises(FailedPrecondition, match="revoked"):
        node.services.identity.tokens.renew(root(node), app.accessor)


def test_expired_token_stops_working_and_renew(node: Node) -> None:
    t, auth = node.services.identity.tokens, node.services.auth
    app = make_caller(node, ("application",))
    made = t.create(root(node), principal=app.name, ttl=3600)
    node.clock.advance(minutes=30)
    renewed = t.renew(root(node), made.info.accessor)
    assert renewed.expires_at == node.clock.now + timedelta(hours=1)
    node.clock.advance(minutes=61)
    auth.forget()
    with pytest.raises(Unauthenticated):
        auth.authenticate(made.token)
    with pytest.raises(FailedPrecondition, match="expired"):
        t.renew(root(node), made.info.accessor)
    listed = {x.accessor: x for x in t.list(root(node), principal=app.name)}
    assert listed[made.info.accessor].expires_at is not None


def test_renew_is_capped_at_the_maximum_lifetime(node: Node) -> None:
    """Near the maximum lifetime a renewal extends as far as allowed (the answer shows the
    capped expiry); only when no extension is possible is it refused."""
    t = node.services.identity.tokens
    app = make_caller(node, ("application",))
    made = t.create(root(node), principal=app.name, ttl="200d")
    node.clock.advance(days=190)
    renewed = t.renew(root(node), made.info.accessor)
    limit = made.info.created_at + timedelta(seconds=t.max_ttl)
    assert renewed.expires_at == limit < node.clock.now + timedelta(days=200)
    with pytest.raises(FailedPrecondition, match="maximum lifetime"):
        t.renew(root(node), made.info.accessor)
    node.clock.advance(days=1)
    with pytest.raises(FailedPrecondition, match="maximum lifetime"):
        t.renew(root(node), made.info.accessor)
    assert t.list(root(node), principal=app.name)[-1].expires_at == limit


def test_self_service_needs_no_permission(node: Node) -> None:
    t = node.services.identity.tokens
    app = make_caller(node, ("application",))
    other = make_caller(node, ("application",))
    ctx = app.ctx(node)
    mine = t.list(ctx)
    assert [x.accessor for x in mine] == [app.accessor]
    assert t.renew(ctx, app.accessor).accessor == app.accessor
    with pytest.raises(PermissionDenied, match=r"'token\.list'"):
        t.list(ctx, principal=other.name)
    with pytest.raises(PermissionDenied, match=r"'token\.renew'"):
        t.renew(ctx, other.accessor)
    with pytest.raises(PermissionDenied, match=r"'token\.revoke'"):
        t.revoke(ctx, other.accessor)
    with pytest.raises(NotFound):
        t.revoke(ctx, "acc-" + "0" * 32)
    with pytest.raises(NotFound):
        t.revoke(ctx, "not-an-accessor")
    t.revoke(ctx, app.accessor)
    with pytest.raises(Unauthenticated):
        app.ctx(node)


def test_lookup_self(node: Node) -> None:
    app = make_caller(node, ("application",), metadata={"tenant": "t1"})
    me = node.services.identity.tokens.lookup_self(app.ctx(node))
    assert me["principal"] == app.name and me["roles"] == ["application"]
    assert me["accessor"] == app.accessor and me["metadata"] == {"tenant": "t1"}
    assert me["expires_at"] is not None and me["ttl"] == 30 * 86400
    who = node.services.identity.tokens.lookup_self(root(node))
    assert who["principal"] == "root" and who["expires_at"] is None and who["accessor"]
    with pytest.raises(Unauthenticated):
        node.services.identity.tokens.lookup_self(RequestContext())


def test_revoke_root_needs_a_security_officer(fresh_node: Node) -> None:
    node = fresh_node
    t = node.services.identity.tokens
    root_accessor = t.lookup_self(root(node))["accessor"]
    with pytest.raises(FailedPrecondition, match="security-officer"):
        t.revoke_root(root(node))
    with pytest.raises(FailedPrecondition, match="security-officer"):
        t.revoke(root(node), root_accessor)
    officer = make_caller(node, ("security-officer",))
    app = make_caller(node, ("application",))
    for _ in range(2):  # the default approval policy needs two custodians
        make_caller(node, ("key-custodian",))
    with pytest.raises(PermissionDenied, match=r"'token\.revoke_root'"):
        t.revoke_root(app.ctx(node))
    with pytest.raises(PermissionDenied, match=r"'token\.revoke_root'"):
        t.revoke(app.ctx(node), root_accessor)
    node.services.identity.principals.disable(root(node), officer.name)
    with pytest.raises(FailedPrecondition):
        t.revoke_root(root(node))
    node.services.identity.principals.update(root(node), officer.name, {"disabled": False})
    assert t.revoke_root(officer.ctx(node)) == 1
    with pytest.raises(Unauthenticated):
        node.services.auth.authenticate(ROOT_TOKEN)
    assert t.revoke_root(officer.ctx(node)) == 0
    listed = t.list(officer.ctx(node), principal="root")
    assert listed and all(x.revoked_at is not None for x in listed)
