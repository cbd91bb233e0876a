"""The catalogue of operations a role or grant can name.

Operation names are the audit and metrics names of the REST routes (rest/routes.py) and
of their KMIP equivalents. Patterns may end in ``*`` (``key.*``, ``*``).

* key operations act on one key and need a grant whose scope covers that key;
* system operations (principals, roles, grants, namespaces, audit, approvals) are
  governed by role alone.
"""

from __future__ import annotations

import re

from keykeeper.errors import InvalidArgument

__all__ = [
    "DATA_PLANE",
    "KEY_ADMIN",
    "KEY_OPERATIONS",
    "KEY_READ",
    "SYSTEM_OPERATIONS",
    "check_patterns",
    "is_operation_pattern",
    "matches",
]

KEY_READ = ("key.get", "key.list", "key.versions", "public_key", "key.usage",
            "key.receipt", "key.compromise_report")
KEY_ADMIN = (
    "key.create", "key.update", "key.rotate", "key.disable", "key.enable",
    "key.schedule_destruction", "key.cancel_destruction", "key.compromise",
    "key.destroy_version", "key.export", "key.activate", "key.trim",
    "key.compromise_version", "key.import_parameters", "key.import",
)
DATA_PLANE = (
    "encrypt", "decrypt", "rewrap", "data_key", "sign", "verify", "mac", "verify_mac",
    "encapsulate", "decapsulate",
)
KEY_OPERATIONS: frozenset[str] = frozenset(KEY_READ + KEY_ADMIN + DATA_PLANE)

SYSTEM_OPERATIONS: frozenset[str] = frozenset((
    "random", "sys.seal",
    "sys.rekey",  # change the seal type or its unseal material (docs/seal.md)
    "principal.create", "principal.list", "principal.get", "principal.update",
    "principal.delete",
    "token.create", "token.list", "token.revoke", "token.renew", "token.revoke_root",
    "role.create", "role.list", "role.get", "role.update", "role.delete",
    "grant.create", "grant.list", "grant.get", "grant.delete",
    "namespace.create", "namespace.list", "namespace.get", "namespace.update",
    "namespace.delete",
    "approval.list", "approval.get", "approval.approve", "approval.reject",
    "approval_policy.get", "approval_policy.update",
    "sod_policy.get", "sod_policy.update",
    "audit.read", "audit.verify", "audit.config",
    "inventory.read", "report.read",
    "backup.create", "backup.restore",
    "backup.read",  # the backup signing key (to pin when verifying archives elsewhere)
    "key.bulk_revoke",
    "alert.list", "alert.acknowledge",
    "scheduler.read", "scheduler.run",
    "metrics.read",
))

ALL_OPERATIONS: frozenset[str] = KEY_OPERATIONS | SYSTEM_OPERATIONS
_PATTERN = re.compile(r"\*|[a-z_]+(\.[a-z_]+)?|[a-z_]+\.\*")


def is_operation_pattern(value: str) -> bool:
    """True if ``value`` is ``*``, ``group.*`` or a known operation name."""
    if not _PATTERN.fullmatch(value):
        return False
    if value.endswith("*"):
        prefix = value[:-1]
        return prefix == "" or any(op.startswith(prefix) for op in ALL_OPERATIONS)
    return value in ALL_OPERATIONS


def check_patterns(values: list[str] | tuple[str, ...],
                   what: str = "operations") -> tuple[str, ...]:
    """Validate a list of operation patterns; raise :class:`InvalidArgument` naming the first
    unknown one. Returns them de-duplicated, in order."""
    if not values:
        raise InvalidArgument(f"{what} must name at least one operation")
    if len(values) > 200:
        raise InvalidArgument(f"{what} may hold at most 200 entries")
    seen: dict[str, None] = {}
    for value in values:
        if not isinstance(value, str) or not is_operation_pattern(value):
            raise InvalidArgument(f"unknown operation {value!r} in {what}; operations are "
                                  "names such as 'encrypt', 'key.rotate', 'key.*' or '*'")
        seen[value] = None
    return tuple(seen)


def matches(pattern: str, operation: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return operation.startswith(pattern[:-1])
    return pattern == operation
