"""Authorization: principals, roles, grants, separation of duties (pure; no I/O).

The service layer loads a :class:`~keykeeper.authz.policy.PolicySnapshot` from the store
and asks it, per request, whether a principal may run an operation on a key.
"""

from keykeeper.authz.model import Grant, Principal, Role, Scope
from keykeeper.authz.operations import KEY_OPERATIONS, SYSTEM_OPERATIONS, is_operation_pattern
from keykeeper.authz.policy import KeyAttributes, PolicySnapshot

__all__ = [
    "KEY_OPERATIONS",
    "SYSTEM_OPERATIONS",
    "Grant",
    "KeyAttributes",
    "PolicySnapshot",
    "Principal",
    "Role",
    "Scope",
    "is_operation_pattern",
]
