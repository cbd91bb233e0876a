"""Roles (named sets of operations: the most their holders may ever do) and grants
(operations on a scope of keys given to a principal or a role; deny by default).

Rules (NIST SP 800-57 Pt 2 Rev. 1 §6.1; SP 800-53 AC-5, AC-6):

* operations are names or patterns of the catalogue (authz/operations.py); a grant names
  key operations only, since system operations are governed by role alone;
* built-in roles can be changed but not deleted; a role still held by a principal cannot
  be deleted; deleting a role deletes the grants made to it;
* nobody grants to themselves or to a role they hold, and nobody changes a role they hold;
* once the root token is gone, a role change that would leave a rule of the approval
  policy with fewer principals able to approve than it requires is refused;
* the grantee of a grant must exist; a condition is parsed (authz/condition.py), never
  evaluated as code;
* role create/update/delete and grant create/delete pass the dual-control gate after
  validation and before the transaction.

Errors: PermissionDenied, InvalidArgument, NotFound, AlreadyExists, FailedPrecondition,
ApprovalRequired.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection

from keykeeper.authz.condition import parse_condition
from keykeeper.authz.model import Grant, Role, Scope
from keykeeper.authz.operations import KEY_OPERATIONS, check_patterns
from keykeeper.authz.sod import check_not_self
from keykeeper.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from keykeeper.service.builtin import new_grant_id
from keykeeper.service.context import RequestContext
from keykeeper.service.identity_base import IdentityBase
from keykeeper.service.identity_rules import check_description, check_role_name, parse_grantee

__all__ = ["GrantAdmin", "RoleAdmin"]

_LABEL = re.compile(r"[A-Za-z0-9._-]{1,128}")
_GRANT_ID = re.compile(r"g-[0-9a-f]{32}")


def _operations(values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidArgument("operations must be a list of operation names")
    return check_patterns(list(values))


def _key_operations(values: Iterable[str]) -> tuple[str, ...]:
    ops = _operations(values)
    for p in ops:
        covered = (any(k.startswith(p[:-1]) for k in KEY_OPERATIONS) if p.endswith("*")
                   else p in KEY_OPERATIONS)
        if not covered:
            raise InvalidArgument(f"grants give key operations; '{p}' is a system operation, "
                                  "governed by roles alone")
    return ops


def _labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    out = dict(labels or {})
    if len(out) > 64:
        raise InvalidArgument("labels hold at most 64 entries")
    for k, v in out.items():
        if not isinstance(k, str) or not _LABEL.fullmatch(k):
            raise InvalidArgument("label names must match [A-Za-z0-9._-]{1,128}")
        if not isinstance(v, str) or len(v) > 256 or any(ord(c) < 32 for c in v):
            raise InvalidArgument("label values are at most 256 characters, without control "
                                  "characters")
    return out


class RoleAdmin(IdentityBase):
    def _get(self, conn: Connection, name: str) -> Role:
        role = self._d.identity.get_role(conn, name)
        if role is None:
            raise NotFound(f"role '{name}' not found")
        return role

    def create(self, ctx: RequestContext, *, name: str, operations: Iterable[str],
               description: str = "") -> Role:
        self._require(ctx, "role.create")
        now = self._d.clock()
        role = Role(name=check_role_name(name), description=check_description(description),
                    operations=_operations(operations), builtin=False, created_at=now,
                    updated_at=now)
        with self._d.reading() as conn:
            if self._d.identity.get_role(conn, role.name) is not None:
                raise AlreadyExists(f"role '{role.name}' already exists")
        self._gate(ctx, "role.create", {"name": role.name, "description": role.description,
                                        "operations": list(role.operations)},
                   summary=f"create role '{role.name}': {', '.join(role.operations)}")
        with self._d.transaction() as conn:
            self._d.identity.insert_role(conn, role)
        self._changed()
        return role

    def list(self, ctx: RequestContext) -> list[Role]:
        self._require(ctx, "role.list")
        with self._d.reading() as conn:
            return self._d.identity.list_roles(conn)

    def get(self, ctx: RequestContext, name: str) -> Role:
        self._require(ctx, "role.get")
        with self._d.reading() as conn:
            return self._get(conn, name)

    def update(self, ctx: RequestContext, name: str, *, description: str | None = None,
               operations: Iterable[str] | None = None) -> Role:
        """Replace the description and/or the operations (built-in roles too)."""
        actor = self._require(ctx, "role.update")
        if not actor.is_root and name in actor.roles:
            raise PermissionDenied(f"separation of duties: a principal may not change a role "
                                   f"it holds ('{name}')")
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = check_description(description)
        if operations is not None:
            changes["operations"] = list(_operations(operations))
        with self._d.reading() as conn:
            self._get(conn, name)
            self._keep_roles_administrable(conn, name, changes)  # before filing an approval
        if changes:
            self._gate(ctx, "role.update", {"name": name, **changes},
                       summary=f"change role '{name}'" + (
                           f": {', '.join(changes['operations'])}" if "operations" in changes
                           else " (description)"))
        with self._d.transaction() as conn:
            role = self._get(conn, name)
            if changes:
                self._keep_roles_administrable(conn, name, changes)
                ops = changes.get("operations")
                role = replace(role, description=changes.get("description", role.description),
                               operations=tuple(ops) if ops is not None else role.operations,
                               updated_at=self._d.clock())
                self._d.identity.update_role(conn, role)
        self._changed()
        return role

    def _keep_roles_administrable(self, conn: Connection, name: str,
                                  changes: Mapping[str, Any]) -> None:
        """Taking ``approval.approve`` from an approver role must not leave a rule of the
        approval policy without enough approvers once the root token is gone."""
        if "operations" in changes:
            self._keep_administrable(conn, roles={name: tuple(changes["operations"])},
                                     what=f"changing the operations of role '{name}'")

    def _check_deletable(self, conn: Connection, name: str) -> None:
        role = self._get(conn, name)
        if role.builtin:
            raise FailedPrecondition(f"role '{name}' is built in: it can be changed but not "
                                     "deleted")
        holders = [p.name for p in self._d.identity.list_principals(conn, role=name)]
        if holders:
            shown = ", ".join(holders[:10]) + (" ..." if len(holders) > 10 else "")
            raise FailedPrecondition(f"role '{name}' is still held by: {shown}")

    def delete(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        """Delete a role and the grants made to it: ``{"name", "grants_deleted"}``."""
        self._require(ctx, "role.delete")
        with self._d.reading() as conn:
            self._check_deletable(conn, name)
        self._gate(ctx, "role.delete", {"name": name}, summary=f"delete role '{name}'")
        with self._d.transaction() as conn:
            self._check_deletable(conn, name)
            grants = len(self._d.identity.list_grants(conn, grantee_kind="role", grantee=name))
            self._d.identity.delete_role(conn, name)
        self._changed()
        return {"name": name, "grants_deleted": grants}


class GrantAdmin(IdentityBase):
    def _grantee_exists(self, conn: Connection, kind: str, name: str) -> None:
        found = (self._d.identity.get_role(conn, name) if kind == "role"
                 else self._d.identity.get_principal(conn, name))
        if found is None:
            raise InvalidArgument(f"grantee {kind} '{name}' does not exist")

    def create(self, ctx: RequestContext, *, grantee: str, operations: Iterable[str],
               namespace: str = "*", key_pattern: str = "*",
               labels: Mapping[str, str] | None = None,
               condition: str | None = None) -> Grant:
        """Give ``operations`` on the keys of ``namespace`` (or ``*``) whose names match the
        glob ``key_pattern`` and whose labels include ``labels``, when ``condition`` (on
        the encryption context) holds."""
        actor = self._require(ctx, "grant.create")
        kind, name = parse_grantee(grantee)
        check_not_self(actor, kind, name)
        ops = _key_operations(operations)
        scope = Scope(namespace=namespace, key_pattern=key_pattern,
                      labels=MappingProxyType(_labels(labels)))
        parsed = parse_condition(condition) if condition is not None else None
        with self._d.reading() as conn:
            self._grantee_exists(conn, kind, name)
        self._gate(ctx, "grant.create", {
            "grantee": f"{kind}:{name}", "operations": list(ops), "namespace": scope.namespace,
            "key_pattern": scope.key_pattern, "labels": dict(scope.labels),
            "condition": str(parsed) if parsed else None},
            summary=f"grant {', '.join(ops)} on {scope.namespace}:{scope.key_pattern} to "
            f"{kind} '{name}'")
        grant = Grant(id=new_grant_id(), grantee_kind=kind, grantee=name, operations=ops,
                      scope=scope, condition=parsed, created_by=actor.name,
                      created_at=self._d.clock())
        with self._d.transaction() as conn:
            self._grantee_exists(conn, kind, name)
            self._d.identity.insert_grant(conn, grant)
        self._changed()
        return grant

    def list(self, ctx: RequestContext, *, grantee: str | None = None,
             namespace: str | None = None) -> list[Grant]:
        self._require(ctx, "grant.list")
        kind, name = parse_grantee(grantee) if grantee else (None, None)
        if namespace is not None and namespace != "*":
            Scope(namespace=namespace)  # validates the name
        with self._d.reading() as conn:
            return self._d.identity.list_grants(conn, grantee_kind=kind, grantee=name,
                                                namespace=namespace)

    def _get(self, conn: Connection, grant_id: str) -> Grant:
        grant = (self._d.identity.get_grant(conn, grant_id) if _GRANT_ID.fullmatch(grant_id)
                 else None)
        if grant is None:
            raise NotFound(f"grant '{grant_id}' not found")
        return grant

    def get(self, ctx: RequestContext, grant_id: str) -> Grant:
        self._require(ctx, "grant.get")
        with self._d.reading() as conn:
            return self._get(conn, grant_id)

    def delete(self, ctx: RequestContext, grant_id: str) -> dict[str, Any]:
        self._require(ctx, "grant.delete")
        with self._d.reading() as conn:
            grant = self._get(conn, grant_id)
        self._gate(ctx, "grant.delete", {"id": grant_id},
                   summary=f"delete grant {grant_id} ({', '.join(grant.operations)} on "
                   f"{grant.scope.namespace}:{grant.scope.key_pattern} to "
                   f"{grant.grantee_kind} '{grant.grantee}')")
        with self._d.transaction() as conn:
            self._get(conn, grant_id)
            self._d.identity.delete_grant(conn, grant_id)
        self._changed()
        return {"id": grant_id}
