"""The role matrix: each built-in role against each authenticated route of the route table
(admin, key and data plane), on SQLite and PostgreSQL.

A caller holds exactly one built-in role, with the default grants (authz/builtin.py) and,
for ``application``, a grant of its key operations on the test keys (``mx-*``). The
expected answer is worked out here from the role definitions themselves, independently of
authz/policy.py:

* an operation outside the role's operations, or a key operation without a covering
  grant, is denied: 403 ``permission_denied`` naming the missing operation, or 404 when
  the key is outside everything the caller was granted (its existence is not revealed);
* anything else is allowed: the answer may still be 4xx for other reasons (a test body,
  a key of another purpose, dual control's 202), but never 401, 403 or, for a key, 404.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from sqlalchemy import update

from keykeeper.authz.builtin import BUILTIN_ROLES, DEFAULT_GRANTS
from keykeeper.authz.operations import ALL_OPERATIONS, KEY_OPERATIONS, matches
from keykeeper.rest.routes import ROUTES, Route
from keykeeper.service.keys import CreateKey
from keykeeper.store.schema import tokens
from tests.api.test_bad_input import PURPOSE_OF, VALID
from tests.identity.conftest import PASSPHRASE, Api, make_caller, root, unique
from tests.integration.conftest import Node

ROLES = sorted(BUILTIN_ROLES)
AUTH_ROUTES = [r for r in ROUTES if r.auth]
APP_KEYS = "mx-*"       # the application's grant covers these keys
# Routes a principal may call on itself without any permission.
SELF_SERVICE = {"token.lookup_self", "approval.list", "approval.claim"}
# Route operations (audit names) governed by another permission of the catalogue.
PERMISSION_OF = {"audit.search": "audit.read", "audit.head": "audit.read",
                 "audit.public_key": "audit.read", "audit.hash": "audit.read",
                 "audit.checkpoint_now": "audit.verify",
                 "sys.rekey_init": "sys.rekey", "sys.rekey_status": "sys.rekey",
                 "sys.rekey_cancel": "sys.rekey",
                 "backup.signing_key": "backup.read"}

BODIES: dict[str, dict[str, Any]] = {
    **VALID,
    "key.create": {"name": "mx-new"},
    "key.update": {"description": "matrix"},
    "key.schedule_destruction": {"pending_days": 7},
    "key.import": {"import_token": "kkit.x", "wrapped_key_material": "AAAA", "format": "raw"},
    "principal.create": {"name": "mx-new"},
    "principal.update": {"kind": "person"},
    "token.create": {"principal": "mx-victim"},
    "role.create": {"name": "mx-new", "operations": ["encrypt"]},
    "role.update": {"description": "matrix"},
    "grant.create": {"grantee": "role:application", "operations": ["encrypt"],
                     "key_pattern": "nothing-*"},
    "sod_policy.update": {"conflicts": [["crypto-officer", "auditor"],
                                        ["security-officer", "application"]]},
    "approval.approve": {}, "approval.reject": {},
    "approval_policy.update": {"rules": [{"operations": ["key.export"]}]},
    "namespace.create": {"name": "mx-new"},
    "namespace.update": {"description": "matrix"},
    "audit.hash": {"value": "x"},
    "audit.verify": {},
    # lifecycle (tests/scheduler, tests/compromise have the rest)
    "scheduler.run": {"job": "approval_expiry"},
    "key.bulk_revoke": {"namespace": "mx-nothing", "reason": "matrix", "dry_run": True},
}


def permission(route: Route) -> str:
    return PERMISSION_OF.get(route.operation, route.operation)


# -- the role definitions, read directly ------------------------------------------------------
@dataclass(frozen=True)
class GrantDef:
    operations: tuple[str, ...]
    namespace: str = "*"
    key_pattern: str = "*"

    def covers(self, namespace: str, name: str) -> bool:
        pattern_ok = self.key_pattern == "*" or (
            self.key_pattern.endswith("*") and name.startswith(self.key_pattern[:-1]))
        return self.namespace in ("*", namespace) and pattern_ok


def ceiling(role: str) -> tuple[str, ...]:
    return BUILTIN_ROLES[role][1]


def in_ceiling(role: str, op: str) -> bool:
    return any(matches(p, op) for p in ceiling(role))


def app_key_operations() -> tuple[str, ...]:
    return tuple(sorted(op for op in KEY_OPERATIONS if in_ceiling("application", op)))


def grants_of(role: str) -> list[GrantDef]:
    out = [GrantDef(ops, ns) for r, ops, ns in DEFAULT_GRANTS if r == role]
    if role == "application":
        out.append(GrantDef(app_key_operations(), "default", APP_KEYS))
    return out


def expected(role: str, route: Route, key: str | None) -> str:
    """``allow``, ``deny`` (403) or ``hide`` (404)."""
    op = permission(route)
    if route.operation in SELF_SERVICE:
        return "allow"
    if op == "key.create":
        granted = any(any(matches(p, op) for p in g.operations) and g.covers("default", "mx-new")
                      for g in grants_of(role))
        return "allow" if in_ceiling(role, op) and granted else "deny"
    if key is None:
        return "allow" if in_ceiling(role, op) else "deny"
    covering = [g for g in grants_of(role) if g.covers("default", key)]
    if in_ceiling(role, op) and any(any(matches(p, op) for p in g.operations)
                                    for g in covering):
        return "allow"
    visible = any(in_ceiling(role, o) for g in covering for o in KEY_OPERATIONS
                  if any(matches(p, o) for p in g.operations))
    return "deny" if visible else "hide"


# -- the server and its callers ---------------------------------------------------------------
@dataclass
class Matrix:
    api: Api
    tokens: dict[str, str]

    @property
    def node(self) -> Node:
        return self.api.node


@pytest.fixture(scope="module")
def matrix(node: Node) -> Iterator[Matrix]:
    api = Api(node)
    ident = node.services.identity
    callers: dict[str, str] = {}
    for role in ROLES:
        c = make_caller(node, (role,), name=f"mx-{role}")
        callers[role] = c.token
        if role == "application":
            ident.grants.create(root(node), grantee=f"principal:{c.name}",
                                operations=app_key_operations(), namespace="default",
                                key_pattern=APP_KEYS)
    make_caller(node, (), name="mx-victim")
    yield Matrix(api, callers)


def _fill(node: Node, route: Route) -> tuple[str, dict[str, str], str | None]:
    """The path with fresh objects for its parameters, the query, and the key name."""
    ident, path, key = node.services.identity, route.path, None
    if "{key}" in path:
        key = "mx-" + secrets.token_hex(4)
        purpose = PURPOSE_OF.get(route.operation, "encrypt")
        algorithm = "ED25519" if route.operation == "public_key" else None
        node.services.keys.create(root(node), CreateKey(
            name=key, purpose=None if algorithm else purpose, algorithm=algorithm))
        path = path.replace("{key}", key).replace("{version}", "1")
    if "{accessor}" in path:
        made = ident.tokens.create(root(node), principal="mx-victim")
        path = path.replace("{accessor}", made.info.accessor)
    if path.startswith("/v1/principals/{name}"):
        path = path.replace("{name}", ident.principals.create(root(node),
                                                              name=unique("mx-p")).name)
    if path.startswith("/v1/roles/{name}"):
        made_role = ident.roles.create(root(node), name=unique("mx-r"), operations=["encrypt"])
        path = path.replace("{name}", made_role.name)
    if path.startswith("/v1/grants/{id}"):
        grant = ident.grants.create(root(node), grantee="role:application",
                                    operations=["encrypt"], key_pattern=unique("none") + "-*")
        path = path.replace("{id}", grant.id)
    for param in ("{name}", "{id}"):
        path = path.replace(param, "mx-nothing")
    query = {"principal": "mx-victim"} if route.operation == "token.list" else {}
    return path, query, key


def _body(route: Route) -> dict[str, Any] | None:
    if route.request is None:
        return None
    body = dict(BODIES.get(route.operation, {}))
    if "name" in body:
        body["name"] = unique(str(body["name"]))
    msgspec.convert(body, route.request)  # a body the route accepts: 400 never hides 403
    return body


def _restore(node: Node) -> None:
    """Undo what an allowed call could do to the fixture's root: seal, revoke-root."""
    if node.services.system.sealed():
        node.services.system.unseal(PASSPHRASE)
    with node.services.deps.engine.begin() as conn:
        conn.execute(update(tokens).where(tokens.c.principal == "root")
                     .values(revoked_at=None))
    node.services.auth.forget()


def test_every_route_operation_is_governed() -> None:
    """Each authenticated route names a catalogue operation (or a documented alias, or
    self-service), so the matrix below covers every route."""
    for route in AUTH_ROUTES:
        assert (permission(route) in ALL_OPERATIONS or route.operation in SELF_SERVICE), (
            route.method, route.path, route.operation)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", AUTH_ROUTES, ids=[f"{r.method} {r.path}" for r in AUTH_ROUTES])
def test_role_against_route(matrix: Matrix, role: str, route: Route) -> None:
    node = matrix.node
    path, query, key = _fill(node, route)
    body = _body(route)
    want = expected(role, route, key)
    try:
        r = matrix.api.request(route.method, path, body, token=matrix.tokens[role], **query)
    finally:
        _restore(node)
    got = r.json() if r.content else {}
    where = f"{role} {route.method} {path} -> {r.status_code} {got}"
    if want == "allow":
        assert r.status_code not in (401, 403), where
        if key is not None:
            assert r.status_code != 404, where
    elif want == "deny":
        assert (r.status_code, got.get("code")) == (403, "permission_denied"), where
        assert f"'{permission(route)}'" in got["detail"], where
    else:
        assert (r.status_code, got.get("code")) == (404, "not_found"), where


@pytest.mark.parametrize("route", [r for r in AUTH_ROUTES if "{key}" in r.path],
                         ids=[f"{r.method} {r.path}" for r in AUTH_ROUTES if "{key}" in r.path])
def test_application_key_outside_scope_is_not_found(matrix: Matrix, route: Route) -> None:
    node = matrix.node
    name = "other-" + secrets.token_hex(4)
    node.services.keys.create(root(node), CreateKey(
        name=name, purpose=PURPOSE_OF.get(route.operation, "encrypt")))
    key_id = node.services.keys.get(root(node), name).id
    for ref in (name, f"default:{name}", key_id):
        path = route.path.replace("{key}", ref).replace("{version}", "1")
        r = matrix.api.request(route.method, path, _body(route),
                               token=matrix.tokens["application"])
        assert (r.status_code, r.json()["code"]) == (404, "not_found"), (path, r.text)
