"""The dual-control policy: which operations wait for M-of-N approval, and from whom.

Kept in ``system_config`` under ``approvals.policy`` as JSON::

    {"rules": [{"operations": ["key.destroy_version", ...], "required": 2,
                "approver_roles": ["key-custodian"], "expiry_seconds": 86400}]}

An operation is under dual control when a rule lists it (exactly, or by a pattern such as
``key.*``); the first rule that lists it decides. ``required`` approvals (M) must come
from distinct principals holding one of ``approver_roles``, never from the requester, so
M = 1 is already two-person control. A store without a policy uses :data:`DEFAULT_POLICY`.

:func:`eligible_approvers` counts who can vote under a rule; the lock-out guards
(revoking the root token, disabling or deleting approvers, changing roles or the policy)
use it so that every rule keeps at least M eligible approvers once no root token exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keykeeper.authz.model import Principal
from keykeeper.authz.operations import check_patterns, matches
from keykeeper.errors import InvalidArgument

__all__ = [
    "DEFAULT_APPROVER_ROLES",
    "DEFAULT_EXPIRY_SECONDS",
    "DEFAULT_OPERATIONS",
    "DEFAULT_POLICY",
    "DEFAULT_REQUIRED",
    "POLICY_CONFIG",
    "ApprovalPolicy",
    "ApprovalRule",
    "eligible_approvers",
    "shortfall",
]

POLICY_CONFIG = "approvals.policy"
DEFAULT_REQUIRED = 2
DEFAULT_APPROVER_ROLES = ("key-custodian",)
DEFAULT_EXPIRY_SECONDS = 86_400
MIN_EXPIRY_SECONDS, MAX_EXPIRY_SECONDS = 60, 30 * 86_400
MAX_REQUIRED = 16
MAX_RULES = 64
_ROLE = re.compile(r"[A-Za-z0-9._@-]{1,128}")

DEFAULT_OPERATIONS: tuple[str, ...] = (
    "key.destroy_version", "key.schedule_destruction", "key.compromise", "key.export",
    "key.compromise_version", "key.trim", "key.bulk_revoke",
    "grant.create", "grant.delete", "role.create", "role.update", "role.delete",
    "principal.create", "principal.update", "token.create", "audit.config",
    "backup.restore", "namespace.delete", "approval_policy.update", "sod_policy.update",
)


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    operations: tuple[str, ...]
    required: int = DEFAULT_REQUIRED
    approver_roles: tuple[str, ...] = DEFAULT_APPROVER_ROLES
    expiry_seconds: int = DEFAULT_EXPIRY_SECONDS

    def covers(self, operation: str) -> bool:
        return any(matches(p, operation) for p in self.operations)

    def to_json(self) -> dict[str, Any]:
        return {"operations": list(self.operations), "required": self.required,
                "approver_roles": list(self.approver_roles),
                "expiry_seconds": self.expiry_seconds}


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    rules: tuple[ApprovalRule, ...]

    def rule_for(self, operation: str) -> ApprovalRule | None:
        """The rule that puts ``operation`` under dual control, or None."""
        for rule in self.rules:
            if rule.covers(operation):
                return rule
        return None

    def to_json(self) -> dict[str, Any]:
        return {"rules": [r.to_json() for r in self.rules]}

    @classmethod
    def from_json(cls, value: Any) -> ApprovalPolicy:
        """Parse and validate; InvalidArgument names the first problem."""
        if not isinstance(value, Mapping) or set(value) - {"rules"}:
            raise InvalidArgument("an approval policy is an object with one field, 'rules'")
        rules = value.get("rules")
        if not isinstance(rules, Sequence) or isinstance(rules, str):
            raise InvalidArgument("rules must be a list")
        if len(rules) > MAX_RULES:
            raise InvalidArgument(f"an approval policy holds at most {MAX_RULES} rules")
        parsed = tuple(_rule(r, n) for n, r in enumerate(rules))
        seen: dict[str, int] = {}
        for n, rule in enumerate(parsed):
            for op in rule.operations:
                if op in seen:
                    raise InvalidArgument(f"operation '{op}' is listed in rules {seen[op]} and "
                                          f"{n}; list each operation once")
                seen[op] = n
        return cls(parsed)


def _rule(value: Any, n: int) -> ApprovalRule:
    where = f"rules[{n}]"
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{where} must be an object")
    unknown = set(value) - {"operations", "required", "approver_roles", "expiry_seconds"}
    if unknown:
        raise InvalidArgument(f"{where} has unknown field(s): {', '.join(sorted(unknown))}")
    operations = value.get("operations")
    if not isinstance(operations, list | tuple):
        raise InvalidArgument(f"{where}.operations must be a list of operation names")
    ops = check_patterns(tuple(operations), f"{where}.operations")
    required = value.get("required", DEFAULT_REQUIRED)
    if (not isinstance(required, int) or isinstance(required, bool)
            or not 1 <= required <= MAX_REQUIRED):
        raise InvalidArgument(f"{where}.required must be an integer from 1 to {MAX_REQUIRED} "
                              "(approvals besides the requester's)")
    roles = value.get("approver_roles", list(DEFAULT_APPROVER_ROLES))
    if (not isinstance(roles, list | tuple) or not roles or len(roles) > 32
            or not all(isinstance(r, str) and _ROLE.fullmatch(r) for r in roles)):
        raise InvalidArgument(f"{where}.approver_roles must list 1 to 32 role names")
    expiry = value.get("expiry_seconds", DEFAULT_EXPIRY_SECONDS)
    if (not isinstance(expiry, int) or isinstance(expiry, bool)
            or not MIN_EXPIRY_SECONDS <= expiry <= MAX_EXPIRY_SECONDS):
        raise InvalidArgument(f"{where}.expiry_seconds must be from {MIN_EXPIRY_SECONDS} to "
                              f"{MAX_EXPIRY_SECONDS}")
    return ApprovalRule(operations=ops, required=required,
                        approver_roles=tuple(dict.fromkeys(roles)), expiry_seconds=expiry)


DEFAULT_POLICY = ApprovalPolicy((ApprovalRule(operations=DEFAULT_OPERATIONS),))

VOTE = "approval.approve"


def eligible_approvers(rule: ApprovalRule, principals: Iterable[Principal],
                       operations_of: Mapping[str, Sequence[str]]) -> list[str]:
    """Names of the principals that can vote under ``rule``: enabled, holding one of its
    approver roles, and holding ``approval.approve`` through one of their roles
    (``operations_of``: role name -> its operations)."""
    wanted = set(rule.approver_roles)
    return [p.name for p in principals
            if not p.disabled and wanted.intersection(p.roles)
            and any(matches(op, VOTE) for role in p.roles
                    for op in operations_of.get(role, ()))]


def shortfall(rule: ApprovalRule, have: int) -> str:
    """Why ``rule`` lacks approvers: how many it needs, from which role, and how many
    are missing."""
    roles = " or ".join(f"'{r}'" for r in rule.approver_roles)
    shown = ", ".join(rule.operations[:4]) + (", ..." if len(rule.operations) > 4 else "")
    return (f"the approval rule for {shown} needs {rule.required} approver(s) with role "
            f"{roles} (and '{VOTE}'), but {have} enabled principal(s) qualify: "
            f"{rule.required - have} more missing")
