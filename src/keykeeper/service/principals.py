"""Principals (who calls) and the separation-of-duties policy on the roles they hold.

Rules (NIST SP 800-57 Pt 2 Rev. 1 §6.1; SP 800-53 AC-5 separation of duties, AC-6 least
privilege):

* the name ``root`` is reserved (any letter case) for the break-glass init token;
* every role named must exist; no principal holds both roles of a conflicting pair
  (the policy stored in ``system_config`` under ``authz.sod_conflicts``), checked in the
  transaction that assigns the roles;
* nobody changes or deletes their own principal (no self-assigned roles, no self-edited
  metadata that grant conditions read);
* a certificate subject maps to at most one principal;
* once every root token is revoked, a principal cannot be deleted, disabled or stripped
  of a role when that would leave no enabled security officer, or fewer principals able
  to approve than a rule of the approval policy requires;
* assigning roles (create with roles, an update that changes roles or metadata, since
  grant conditions read metadata), changing the certificate subjects a principal answers
  to (whoever holds such a certificate acts as the principal), and changing the policy
  pass the dual-control gate after validation and before the transaction.

Errors: PermissionDenied (missing permission, SoD, self-change), InvalidArgument (bad
field, unknown role), NotFound, AlreadyExists (name or certificate subject taken),
FailedPrecondition (policy already violated; administration would be locked out),
ApprovalRequired.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection

from keykeeper.authz.model import ROOT, Principal
from keykeeper.authz.sod import check_conflicts, parse_conflicts
from keykeeper.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from keykeeper.service.builtin import SOD_CONFIG
from keykeeper.service.context import RequestContext
from keykeeper.service.identity_base import IdentityBase
from keykeeper.service.identity_rules import (
    check_kind,
    check_metadata,
    check_new_principal_name,
    check_rate_limit,
    check_role_name,
    check_role_names,
    check_subjects,
)
from keykeeper.service.identity_views import principal_fingerprint

__all__ = ["PATCH_FIELDS", "PrincipalAdmin"]

PATCH_FIELDS = ("kind", "roles", "metadata", "certificate_subjects", "rate_limit", "disabled")


def _not_found(name: str) -> NotFound:
    if name == ROOT:
        return NotFound("principal 'root' is the break-glass init token, not a stored "
                        "principal")
    return NotFound(f"principal '{name}' not found")


def _canonical_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a PATCH: each field given is replaced; ``rate_limit: None`` clears it."""
    unknown = sorted(set(changes) - set(PATCH_FIELDS))
    if unknown:
        raise InvalidArgument(f"unknown principal field(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for field, value in changes.items():
        if field == "kind":
            out[field] = check_kind(value)
        elif field == "roles":
            out[field] = list(check_role_names(value))
        elif field == "metadata":
            out[field] = check_metadata(value)
        elif field == "certificate_subjects":
            out[field] = list(check_subjects(value))
        elif field == "rate_limit":
            out[field] = check_rate_limit(value)
        elif not isinstance(value, bool):
            raise InvalidArgument("disabled must be true or false")
        else:
            out[field] = value
    return out


def _apply(p: Principal, changes: Mapping[str, Any], now: Any) -> Principal:
    fields: dict[str, Any] = dict(changes)
    if "roles" in fields:
        fields["roles"] = tuple(fields["roles"])
    if "certificate_subjects" in fields:
        fields["certificate_subjects"] = tuple(fields["certificate_subjects"])
    if "metadata" in fields:
        fields["metadata"] = MappingProxyType(dict(fields["metadata"]))
    return replace(p, **fields, updated_at=now)


class PrincipalAdmin(IdentityBase):
    # -- checks shared by create and update ------------------------------------------------
    def _check_assignable(self, conn: Connection, p: Principal) -> None:
        known = {r.name for r in self._d.identity.list_roles(conn)}
        for role in p.roles:
            if role not in known:
                raise InvalidArgument(f"role '{role}' does not exist")
        check_conflicts(p.roles, self._conflicts(conn))
        if p.certificate_subjects:
            mine = set(p.certificate_subjects)
            for other in self._d.identity.list_principals(conn):
                taken = mine.intersection(other.certificate_subjects)
                if other.name != p.name and taken:
                    raise AlreadyExists(f"certificate subject '{sorted(taken)[0]}' already "
                                        f"maps to principal '{other.name}'")

    @staticmethod
    def _not_self(actor: Principal, name: str) -> None:
        if not actor.is_root and actor.name == name:
            raise PermissionDenied("separation of duties: a principal may not change or "
                                   "delete itself")

    # -- principals ------------------------------------------------------------------------
    def create(self, ctx: RequestContext, *, name: str, kind: str = "service",
               roles: Iterable[str] = (), metadata: Mapping[str, str] | None = None,
               certificate_subjects: Iterable[str] = (),
               rate_limit: float | None = None) -> Principal:
        """Create a principal; ``rate_limit`` in requests per second (None: default)."""
        actor = self._require(ctx, "principal.create")
        now = self._d.clock()
        p = Principal(name=check_new_principal_name(name), kind=check_kind(kind),
                      roles=check_role_names(roles),
                      metadata=MappingProxyType(check_metadata(metadata or {})),
                      certificate_subjects=check_subjects(certificate_subjects),
                      rate_limit=check_rate_limit(rate_limit), created_by=actor.name,
                      created_at=now, updated_at=now)
        with self._d.reading() as conn:
            if self._d.identity.get_principal(conn, p.name) is not None:
                raise AlreadyExists(f"principal '{p.name}' already exists")
            self._check_assignable(conn, p)
        if p.roles:
            # Roles, and the certificates that act with them: dual control.
            subjects = (f" and certificate subjects {'; '.join(p.certificate_subjects)}"
                        if p.certificate_subjects else "")
            self._gate(ctx, "principal.create", {
                "name": p.name, "kind": p.kind, "roles": list(p.roles),
                "metadata": dict(p.metadata), "certificate_subjects":
                list(p.certificate_subjects), "rate_limit": p.rate_limit},
                summary=f"create principal '{p.name}' with roles {', '.join(p.roles)}"
                f"{subjects}")
        with self._d.transaction() as conn:
            self._check_assignable(conn, p)
            self._d.identity.insert_principal(conn, p)
        self._changed()
        return p

    def list(self, ctx: RequestContext, *, role: str | None = None) -> list[Principal]:
        self._require(ctx, "principal.list")
        with self._d.reading() as conn:
            return self._d.identity.list_principals(
                conn, role=check_role_name(role) if role else None)

    def get(self, ctx: RequestContext, name: str) -> Principal:
        self._require(ctx, "principal.get")
        with self._d.reading() as conn:
            p = self._d.identity.get_principal(conn, name)
        if p is None:
            raise _not_found(name)
        return p

    def update(self, ctx: RequestContext, name: str, changes: Mapping[str, Any], *,
               expect: Mapping[str, Any] | None = None) -> Principal:
        """PATCH semantics: each field in ``changes`` (kind, roles, metadata,
        certificate_subjects, rate_limit, disabled) replaces the stored one. ``expect`` (set
        by an approved request) is the principal as the approvers saw it: FailedPrecondition
        if it has changed since (metadata swapped, or deleted and created again)."""
        actor = self._require(ctx, "principal.update")
        self._not_self(actor, name)
        canonical = _canonical_changes(changes)
        with self._d.reading() as conn:
            before = self._d.identity.get_principal(conn, name)
            if before is None:
                raise _not_found(name)
            preview = _apply(before, canonical, before.updated_at)
            self._check_assignable(conn, preview)
            # Fail before filing an approval.
            self._keep_administrable(conn, name=name, after=preview,
                                     what=f"this change of '{name}'")
        # Roles and metadata decide what the principal may do (metadata through grant
        # conditions such as context.tenant == principal.metadata.tenant), and certificate
        # subjects who may act as it: dual control.
        what: list[str] = []
        roles_change = preview.roles != before.roles
        subjects_change = preview.certificate_subjects != before.certificate_subjects
        if roles_change:
            what.append(f"roles to {', '.join(preview.roles) or '(none)'}")
        if "metadata" in canonical and canonical["metadata"] != dict(before.metadata):
            what.append("metadata to " + (", ".join(
                f"{k}={v}" for k, v in sorted(canonical["metadata"].items())) or "(none)"))
        if subjects_change:
            what.append("certificate subjects to "
                        + ("; ".join(preview.certificate_subjects) or "(none)"))
        if what:
            # What the principal will be, so that approvers see who may act as what.
            context: list[str] = []
            if not roles_change:
                context.append(f"it holds roles {', '.join(preview.roles) or '(none)'}")
            if "metadata" not in canonical and preview.metadata:
                context.append("its metadata is " + ", ".join(
                    f"{k}={v}" for k, v in sorted(preview.metadata.items())))
            if not subjects_change and preview.certificate_subjects:
                context.append("it answers to certificate subjects "
                               + "; ".join(preview.certificate_subjects))
            self._gate(ctx, "principal.update", {"name": name, "changes": canonical,
                                                 "expect": principal_fingerprint(before)},
                       summary=f"set the {' and '.join(what)} of principal '{name}'"
                       + (f" ({'; '.join(context)})" if context else ""))
        with self._d.transaction() as conn:
            current = self._d.identity.get_principal(conn, name, for_update=True)
            if current is None:
                raise _not_found(name)
            if expect is not None and principal_fingerprint(current) != dict(expect):
                raise FailedPrecondition(
                    f"principal '{name}' has changed since this request was filed (its "
                    "roles, metadata or certificate subjects, or it was created again); "
                    "file the change again")
            if expect is None and principal_fingerprint(current) != principal_fingerprint(
                    before):
                # Decided against ``before`` (read outside this transaction): a change in
                # between (an approved one, say) must not be undone without approval.
                raise FailedPrecondition(f"principal '{name}' changed while this update was "
                                         "being made; retry it")
            after = _apply(current, canonical, self._d.clock())
            self._check_assignable(conn, after)
            self._keep_administrable(conn, name=name, after=after,
                                     what=f"this change of '{name}'")
            self._d.identity.update_principal(conn, after)
        self._changed()
        return after

    def disable(self, ctx: RequestContext, name: str) -> Principal:
        """Refuse every credential of ``name`` (tokens and certificates) until re-enabled."""
        return self.update(ctx, name, {"disabled": True})

    def delete(self, ctx: RequestContext, name: str) -> dict[str, Any]:
        """Delete a principal, revoking its tokens and deleting its grants; answers
        ``{"name", "tokens_revoked", "grants_deleted"}``."""
        actor = self._require(ctx, "principal.delete")
        self._not_self(actor, name)
        with self._d.transaction() as conn:
            if self._d.identity.get_principal(conn, name, for_update=True) is None:
                raise _not_found(name)
            self._keep_administrable(conn, name=name, after=None,
                                     what=f"deleting '{name}'")
            revoked = self._d.identity.revoke_tokens_of(conn, name, self._d.clock())
            grants = len(self._d.identity.list_grants(conn, grantee_kind="principal",
                                                      grantee=name))
            self._d.identity.delete_principal(conn, name)
        self._changed()
        return {"name": name, "tokens_revoked": revoked, "grants_deleted": grants}

    # -- separation-of-duties policy ---------------------------------------------------------
    def get_sod(self, ctx: RequestContext) -> builtins.list[tuple[str, str]]:
        """The conflicting role pairs: nobody holds both roles of a pair."""
        self._require(ctx, "sod_policy.get")
        with self._d.reading() as conn:
            return list(self._conflicts(conn))

    def _check_policy(self, conn: Connection, conflicts: tuple[tuple[str, str], ...]) -> None:
        known = {r.name for r in self._d.identity.list_roles(conn)}
        for pair in conflicts:
            for role in pair:
                if role not in known:
                    raise InvalidArgument(f"role '{role}' does not exist")
        violators: list[str] = []
        for p in self._d.identity.list_principals(conn):
            held = set(p.roles)
            violators.extend(f"{p.name} ({a} + {b})" for a, b in conflicts
                             if a in held and b in held)
        if violators:
            shown = ", ".join(violators[:10]) + (" ..." if len(violators) > 10 else "")
            raise FailedPrecondition("current principals already violate this policy: "
                                     f"{shown}; change their roles first")

    def set_sod(self, ctx: RequestContext, conflicts: Any) -> builtins.list[tuple[str, str]]:
        """Replace the policy: a list of [role, role] pairs (at most 100). Refused while a
        current principal holds both roles of a pair (named in the error)."""
        self._require(ctx, "sod_policy.update")
        parsed = parse_conflicts(list(conflicts) if isinstance(conflicts, list | tuple)
                                 else conflicts)
        unique: dict[frozenset[str], tuple[str, str]] = {}
        for a, b in parsed:
            unique.setdefault(frozenset((check_role_name(a), check_role_name(b))), (a, b))
        pairs = tuple(unique.values())
        with self._d.reading() as conn:
            self._check_policy(conn, pairs)
        self._gate(ctx, "sod_policy.update", {"conflicts": [list(p) for p in pairs]},
                   summary="set the separation-of-duties policy to " + (
                       "; ".join(f"{a} / {b}" for a, b in pairs) or "(no conflicts)"))
        with self._d.transaction() as conn:
            for p in self._d.identity.list_principals(conn):
                self._d.identity.get_principal(conn, p.name, for_update=True)
            self._check_policy(conn, pairs)
            self._d.system.set_config(conn, SOD_CONFIG, [list(p) for p in pairs])
        self._changed()
        return list(pairs)
