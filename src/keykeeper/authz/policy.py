"""Decisions: may this principal run this operation (on this key, with this context)?

Rules (deny by default):

* ``root`` (the break-glass init token) may do everything;
* a system operation is allowed when one of the principal's roles lists it;
* a key operation is allowed when one of the principal's roles lists it (the ceiling) **and**
  a grant to the principal or to one of its roles lists it with a scope that covers the key
  (namespace, name glob, labels) and, if the grant has a condition, the condition holds
  for the request's encryption context;
* a key is *visible* to a principal when at least one granted operation within its ceiling
  covers it; an invisible key is answered exactly as a missing one (404), so callers never
  learn of keys outside their scope.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from keykeeper.authz.condition import Condition
from keykeeper.authz.model import Grant, Principal, Role
from keykeeper.authz.operations import matches

__all__ = ["Access", "KeyAttributes", "PolicySnapshot"]


@dataclass(frozen=True, slots=True)
class KeyAttributes:
    namespace: str
    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Access:
    """The answer for one (principal, operation, key): allowed outright, allowed when one
    of ``conditions`` holds for the request context, or denied."""

    allowed: bool
    conditions: tuple[Condition, ...] = ()

    def permits(self, context: Mapping[str, str] | None, who: Principal) -> bool:
        if not self.allowed:
            return False
        if not self.conditions:
            return True
        return any(c.holds(context, who) for c in self.conditions)


ALLOW = Access(True)
DENY = Access(False)


class PolicySnapshot:
    """Roles and grants as read from the store at one moment; immutable, cheap to query."""

    def __init__(self, roles: Iterable[Role], grants: Iterable[Grant]) -> None:
        self.roles: dict[str, Role] = {r.name: r for r in roles}
        self.grants: tuple[Grant, ...] = tuple(grants)
        # Decisions memoized for the snapshot's life (the service keys them by principal,
        # roles, operation and key version of metadata); bounded.
        self.memo: dict[tuple[object, ...], Access] = {}
        self._by_grantee: dict[tuple[str, str], list[Grant]] = {}
        for g in self.grants:
            self._by_grantee.setdefault((g.grantee_kind, g.grantee), []).append(g)

    def ceiling(self, who: Principal) -> tuple[str, ...]:
        """Every operation pattern the principal's roles allow."""
        out: list[str] = []
        for name in who.roles:
            role = self.roles.get(name)
            if role is not None:
                out.extend(role.operations)
        return tuple(out)

    def in_ceiling(self, who: Principal, operation: str) -> bool:
        if who.is_root:
            return True
        return any(matches(p, operation) for p in self.ceiling(who))

    def grants_of(self, who: Principal) -> list[Grant]:
        out = list(self._by_grantee.get(("principal", who.name), ()))
        for role in who.roles:
            out.extend(self._by_grantee.get(("role", role), ()))
        return out

    def permits_system(self, who: Principal, operation: str) -> bool:
        return not who.disabled and self.in_ceiling(who, operation)

    def key_access(self, who: Principal, operation: str, key: KeyAttributes) -> Access:
        if who.is_root:
            return ALLOW
        if who.disabled or not self.in_ceiling(who, operation):
            return DENY
        conditions: list[Condition] = []
        for g in self.grants_of(who):
            if (any(matches(p, operation) for p in g.operations)
                    and g.scope.covers(key.namespace, key.name, key.labels)):
                if g.condition is None:
                    return ALLOW
                conditions.append(g.condition)
        return Access(True, tuple(conditions)) if conditions else DENY

    def can_see(self, who: Principal, key: KeyAttributes) -> bool:
        """True if any operation the principal holds covers ``key`` (conditions aside)."""
        if who.is_root:
            return True
        if who.disabled:
            return False
        ceiling = self.ceiling(who)
        for g in self.grants_of(who):
            if g.scope.covers(key.namespace, key.name, key.labels) and any(
                    _overlap(p, c) for p in g.operations for c in ceiling):
                return True
        return False

    def namespaces_visible(self, who: Principal) -> set[str] | None:
        """The namespaces in which the principal may see some key; None means all."""
        if who.is_root:
            return None
        out: set[str] = set()
        for g in self.grants_of(who):
            if g.scope.namespace == "*":
                return None
            out.add(g.scope.namespace)
        return out


def _overlap(a: str, b: str) -> bool:
    """True if two operation patterns can name a common operation."""
    if a == "*" or b == "*":
        return True
    pa, pb = a.rstrip("*"), b.rstrip("*")
    if a.endswith("*") and b.endswith("*"):
        return pa.startswith(pb) or pb.startswith(pa)
    if a.endswith("*"):
        return b.startswith(pa)
    if b.endswith("*"):
        return a.startswith(pb)
    return a == b
