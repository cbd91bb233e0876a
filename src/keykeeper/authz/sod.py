"""Separation of duties, enforced when roles are assigned and grants are made
(NIST SP 800-57 Part 2 Rev. 1 §6.1; SP 800-53 AC-5)."""

from __future__ import annotations

from collections.abc import Iterable

from keykeeper.authz.model import Grant, Principal
from keykeeper.errors import InvalidArgument, PermissionDenied

__all__ = ["check_conflicts", "check_not_self", "parse_conflicts"]


def parse_conflicts(value: object) -> tuple[tuple[str, str], ...]:
    """Validate a list of role-name pairs; raise :class:`InvalidArgument`."""
    if not isinstance(value, list) or len(value) > 100:
        raise InvalidArgument("conflicts must be a list of at most 100 [role, role] pairs")
    out: list[tuple[str, str]] = []
    for pair in value:
        if (not isinstance(pair, list | tuple) or len(pair) != 2
                or not all(isinstance(r, str) and r for r in pair) or pair[0] == pair[1]):
            raise InvalidArgument("each conflict is a pair of two different role names")
        out.append((pair[0], pair[1]))
    return tuple(out)


def check_conflicts(roles: Iterable[str], conflicts: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`PermissionDenied` if ``roles`` holds both roles of a conflicting pair."""
    held = set(roles)
    for a, b in conflicts:
        if a in held and b in held:
            raise PermissionDenied(f"separation of duties: one principal may not hold both "
                                   f"'{a}' and '{b}'")


def check_not_self(actor: Principal, grantee_kind: str, grantee: str) -> None:
    """Nobody grants to themselves, directly or through a role they hold."""
    if actor.is_root:
        return
    if (grantee_kind == "principal" and grantee == actor.name) or (
            grantee_kind == "role" and grantee in actor.roles):
        raise PermissionDenied("separation of duties: a principal may not grant to itself "
                               "or to a role it holds")


def grants_to(grants: Iterable[Grant], kind: str, name: str) -> list[Grant]:
    return [g for g in grants if g.grantee_kind == kind and g.grantee == name]
