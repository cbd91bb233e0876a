"""The built-in roles, their default grants and the default separation-of-duties rules.

Roles follow NIST SP 800-57 Part 2 Rev. 1 §6.1 and SP 800-130 §6.3 (key-management roles):
the security officer manages who may do what but uses no key; the crypto officer manages
keys but cannot encrypt, decrypt or sign; custodians approve sensitive operations and hold
shares; auditors read and never see key material; applications use the keys they are
granted. Built-in roles can be changed (their operations) but not deleted.
"""

from __future__ import annotations

from keykeeper.authz.operations import DATA_PLANE, KEY_ADMIN, KEY_READ

__all__ = ["BUILTIN_ROLES", "DEFAULT_GRANTS", "DEFAULT_SOD_CONFLICTS"]

_APPROVAL_VIEW = ("approval.list", "approval.get")
_DIRECTORY_READ = ("principal.list", "principal.get", "role.list", "role.get",
                   "grant.list", "grant.get", "namespace.list", "namespace.get")

BUILTIN_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "security-officer": (
        "Principals, tokens, roles, grants, namespaces and policies; uses no key",
        ("principal.*", "token.*", "role.*", "grant.*", "namespace.*", "approval_policy.*",
         "sod_policy.*", "audit.config", "inventory.read", "sys.seal", "sys.rekey", "alert.*",
         "scheduler.read", "metrics.read", "backup.create", "backup.read", *_APPROVAL_VIEW)),
    "crypto-officer": (
        "Creates, rotates, disables, destroys and marks keys compromised; no key use",
        (*KEY_READ, *KEY_ADMIN, "namespace.list", "namespace.get", "inventory.read",
         "key.bulk_revoke", "alert.list", "scheduler.*", "metrics.read", *_APPROVAL_VIEW)),
    "key-custodian": (
        "Approves sensitive operations; holds backup and unseal shares",
        ("approval.*", "approval_policy.get", "backup.create", "backup.restore",
         "backup.read", "sys.seal")),
    "auditor": (
        "Reads the audit trail, the inventory and reports; nothing else",
        ("audit.read", "audit.verify", "inventory.read", "report.read", "key.get",
         "key.list", "key.versions", "key.usage", "key.receipt", "key.compromise_report",
         "alert.list", "scheduler.read", "metrics.read", "backup.read", *_DIRECTORY_READ,
         *_APPROVAL_VIEW)),
    "application": (
        "Data-plane operations on the keys it is granted",
        (*DATA_PLANE, "key.get", "public_key", "random")),
}

# (grantee role, operations, namespace): installed at init, changeable like any grant.
DEFAULT_GRANTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("crypto-officer", (*KEY_READ, *KEY_ADMIN), "*"),
    ("auditor", ("key.get", "key.list", "key.versions", "key.usage", "key.receipt",
                 "key.compromise_report"), "*"),
)

DEFAULT_SOD_CONFLICTS: tuple[tuple[str, str], ...] = (
    ("crypto-officer", "auditor"),
    ("security-officer", "application"),
)
