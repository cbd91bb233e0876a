"""Authorization decisions (authz/policy.py): role ceiling ∩ scoped grants, deny by default."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from keykeeper.authz.builtin import BUILTIN_ROLES, DEFAULT_GRANTS
from keykeeper.authz.condition import parse_condition
from keykeeper.authz.model import Grant, Principal, Role, Scope
from keykeeper.authz.operations import (
    DATA_PLANE,
    KEY_ADMIN,
    KEY_OPERATIONS,
    SYSTEM_OPERATIONS,
    check_patterns,
)
from keykeeper.authz.policy import KeyAttributes, PolicySnapshot
from keykeeper.authz.sod import check_conflicts, check_not_self, parse_conflicts
from keykeeper.errors import InvalidArgument, PermissionDenied

ROLES = [Role(name, desc, ops, builtin=True) for name, (desc, ops) in BUILTIN_ROLES.items()]
PAY = KeyAttributes("payments", "card-1", MappingProxyType({"env": "prod"}))
HR = KeyAttributes("hr", "salaries", MappingProxyType({}))


def grant(grantee: str, ops: tuple[str, ...], namespace: str = "*", pattern: str = "*",
          labels: dict[str, str] | None = None, condition: str | None = None,
          kind: str = "principal") -> Grant:
    return Grant(id=f"g-{grantee}-{namespace}-{pattern}", grantee_kind=kind, grantee=grantee,
                 operations=ops, scope=Scope(namespace, pattern, MappingProxyType(labels or {})),
                 condition=parse_condition(condition) if condition else None)


def snapshot(*grants: Grant) -> PolicySnapshot:
    defaults = [grant(role, ops, ns, kind="role") for role, ops, ns in DEFAULT_GRANTS]
    return PolicySnapshot(ROLES, [*defaults, *grants])


def test_deny_by_default_application_without_grant() -> None:
    app = Principal("app", roles=("application",))
    snap = snapshot()
    for op in DATA_PLANE:
        assert not snap.key_access(app, op, PAY).allowed
    assert not snap.can_see(app, PAY)


def test_grant_scope_namespace_pattern_and_labels() -> None:
    app = Principal("app", roles=("application",))
    snap = snapshot(grant("app", ("encrypt",), "payments", "card-*", {"env": "prod"}))
    assert snap.key_access(app, "encrypt", PAY).allowed
    assert not snap.key_access(app, "decrypt", PAY).allowed          # not granted
    assert not snap.key_access(app, "encrypt", HR).allowed           # other namespace
    other = KeyAttributes("payments", "card-1", MappingProxyType({"env": "dev"}))
    assert not snap.key_access(app, "encrypt", other).allowed        # label mismatch
    named = KeyAttributes("payments", "token-1", MappingProxyType({"env": "prod"}))
    assert not snap.key_access(app, "encrypt", named).allowed        # pattern mismatch
    assert snap.can_see(app, PAY) and not snap.can_see(app, HR)
    assert snap.namespaces_visible(app) == {"payments"}


def test_role_ceiling_caps_grants() -> None:
    """A grant cannot give more than the principal's roles allow (least privilege)."""
    officer = Principal("so", roles=("security-officer",))
    snap = snapshot(grant("so", ("*",)))
    for op in (*DATA_PLANE, *KEY_ADMIN):
        assert not snap.key_access(officer, op, PAY).allowed, op
    assert snap.permits_system(officer, "grant.create")
    auditor = Principal("aud", roles=("auditor",))
    assert snap.key_access(auditor, "key.get", PAY).allowed
    for op in DATA_PLANE:
        assert not snap.key_access(auditor, op, PAY).allowed, op


def test_crypto_officer_manages_but_never_uses() -> None:
    co = Principal("co", roles=("crypto-officer",))
    snap = snapshot(grant("co", ("*",)))
    assert snap.key_access(co, "key.rotate", PAY).allowed
    assert not any(snap.key_access(co, op, PAY).allowed for op in DATA_PLANE)


def test_condition_on_context() -> None:
    app = Principal("app", roles=("application",), metadata=MappingProxyType({"tenant": "t1"}))
    snap = snapshot(grant("app", ("encrypt",), "payments",
                          condition="context.tenant == principal.metadata.tenant"))
    access = snap.key_access(app, "encrypt", PAY)
    assert access.allowed and access.conditions
    assert access.permits({"tenant": "t1"}, app)
    assert not access.permits({"tenant": "t2"}, app)
    assert not access.permits(None, app)
    # An unconditional grant beside it wins.
    snap2 = snapshot(grant("app", ("encrypt",), "payments", condition='context.a == "b"'),
                     grant("app", ("encrypt",), "payments", "card-1"))
    assert snap2.key_access(app, "encrypt", PAY).conditions == ()


def test_root_and_disabled() -> None:
    snap = snapshot()
    assert snap.key_access(Principal("root"), "key.destroy_version", PAY).allowed
    assert snap.permits_system(Principal("root"), "principal.create")
    gone = Principal("app", roles=("application",), disabled=True)
    snap = snapshot(grant("app", ("*",)))
    assert not snap.key_access(gone, "encrypt", PAY).allowed
    assert not snap.can_see(gone, PAY)


def test_role_grant_applies_to_holders() -> None:
    app = Principal("app", roles=("application",))
    snap = snapshot(grant("application", ("encrypt",), "payments", kind="role"))
    assert snap.key_access(app, "encrypt", PAY).allowed
    assert not snap.key_access(Principal("x", roles=("auditor",)), "encrypt", PAY).allowed


@pytest.mark.parametrize("text", [
    "context.a", "context.a ==", "== context.a", 'context.a == "x" or context.b == "y"',
    '"x" == "y"', "secret.a == context.b", "context.a === context.b", "context.a == b",
    "", "x" * 2000, 'context.a == "x" and',
])
def test_bad_conditions_are_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_condition(text)


def test_condition_literals_and_not_equal() -> None:
    who = Principal("svc-1", metadata=MappingProxyType({}))
    c = parse_condition(r'context.env != "prod" and principal.name == "svc-1" and '
                        r'context.q == "a \"quoted\" value"')
    assert c.holds({"env": "dev", "q": 'a "quoted" value'}, who)
    assert not c.holds({"env": "prod", "q": 'a "quoted" value'}, who)
    assert not c.holds({"q": 'a "quoted" value'}, who)  # absent never satisfies


def test_operation_patterns() -> None:
    assert check_patterns(["encrypt", "key.*", "encrypt"]) == ("encrypt", "key.*")
    for bad in (["nope"], [], ["key.nope"], ["*x"], ["zzz.*"]):
        with pytest.raises(InvalidArgument):
            check_patterns(bad)
    assert KEY_OPERATIONS.isdisjoint(SYSTEM_OPERATIONS)


def test_builtin_roles_name_only_known_operations() -> None:
    for _, (_, ops) in BUILTIN_ROLES.items():
        check_patterns(list(ops))


def test_separation_of_duties() -> None:
    conflicts = parse_conflicts([["crypto-officer", "auditor"]])
    check_conflicts(["crypto-officer", "key-custodian"], conflicts)
    with pytest.raises(PermissionDenied, match="crypto-officer"):
        check_conflicts(["auditor", "crypto-officer"], conflicts)
    for bad in ("x", [["a"]], [["a", "a"]], [[1, 2]]):
        with pytest.raises(InvalidArgument):
            parse_conflicts(bad)
    so = Principal("so", roles=("security-officer",))
    with pytest.raises(PermissionDenied):
        check_not_self(so, "principal", "so")
    with pytest.raises(PermissionDenied):
        check_not_self(so, "role", "security-officer")
    check_not_self(so, "role", "application")
    check_not_self(Principal("root"), "principal", "root")


def test_scope_validation() -> None:
    for kwargs in ({"namespace": "bad ns"}, {"key_pattern": "a/b"}, {"key_pattern": ""}):
        with pytest.raises(InvalidArgument):
            Scope(**kwargs)  # type: ignore[arg-type]


def test_key_pattern_matching_is_not_exponential() -> None:
    import time
    for pattern, name in (("*-*-*-*-*-*-prod", "-" * 128), ("*a*a*a*a*a*a*b", "a" * 128),
                          ("?*?*?*?*?*?*x", "y" * 128)):
        scope = Scope("*", pattern)
        started = time.perf_counter()
        assert not scope.covers("ns", name, {})
        assert time.perf_counter() - started < 0.05, pattern
    assert Scope("*", "card-?-*").covers("ns", "card-1-x", {})
    assert not Scope("*", "card-?").covers("ns", "card-12", {})
    assert not Scope("*", "a.b").covers("ns", "axb", {})  # "." is literal
