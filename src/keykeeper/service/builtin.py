"""Installs the built-in roles and default grants (authz/builtin.py) in a store.

Runs at init, and at every start on a store that has none yet (a store initialized
before access control existed), in one transaction; existing rows are left as they are,
so an operator's changes to a built-in role survive restarts.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from types import MappingProxyType

from sqlalchemy import Connection

from keykeeper.authz.builtin import BUILTIN_ROLES, DEFAULT_GRANTS, DEFAULT_SOD_CONFLICTS
from keykeeper.authz.model import Grant, Role, Scope
from keykeeper.store.identity import IdentityRepository
from keykeeper.store.system import SystemRepository

__all__ = ["SOD_CONFIG", "new_grant_id", "seed_builtin"]

SOD_CONFIG = "authz.sod_conflicts"


def new_grant_id() -> str:
    return "g-" + secrets.token_hex(16)


def seed_builtin(conn: Connection, identity: IdentityRepository, system: SystemRepository,
                 now: datetime) -> bool:
    """Insert what is missing; True if anything was inserted."""
    if identity.list_roles(conn):
        return False
    for name, (description, operations) in BUILTIN_ROLES.items():
        identity.insert_role(conn, Role(name=name, description=description,
                                        operations=operations, builtin=True, created_at=now,
                                        updated_at=now))
    for role, operations, namespace in DEFAULT_GRANTS:
        identity.insert_grant(conn, Grant(
            id=new_grant_id(), grantee_kind="role", grantee=role, operations=operations,
            scope=Scope(namespace=namespace, key_pattern="*", labels=MappingProxyType({})),
            created_by="system", created_at=now))
    if system.get_config(conn, SOD_CONFIG) is None:
        system.set_config(conn, SOD_CONFIG, [list(p) for p in DEFAULT_SOD_CONFLICTS])
    return True
