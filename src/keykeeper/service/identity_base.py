"""What the access-control administration services share: permission checks, the
dual-control gate, separation-of-duties configuration, cache invalidation, and the guards
that keep access administrable once the root token is gone: an enabled security officer,
and for every rule of the approval policy at least M principals able to approve."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

from keykeeper.authz.builtin import DEFAULT_SOD_CONFLICTS
from keykeeper.authz.model import ROOT, Principal
from keykeeper.authz.sod import parse_conflicts
from keykeeper.errors import FailedPrecondition, Internal, InvalidArgument
from keykeeper.service.approval_policy import (
    DEFAULT_POLICY,
    POLICY_CONFIG,
    ApprovalPolicy,
    eligible_approvers,
    shortfall,
)
from keykeeper.service.auth import TokenAuthenticator
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.builtin import SOD_CONFIG
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps

__all__ = ["OFFICER", "Executor", "Gate", "IdentityBase", "policy_in_force",
           "role_operations", "root_token_active"]

log = logging.getLogger("keykeeper.identity")

OFFICER = "security-officer"


def root_token_active(deps: Deps, conn: Connection) -> bool:
    """Whether an unrevoked, unexpired root (break-glass) token exists."""
    now = deps.clock()
    return any(t.revoked_at is None and (t.expires_at is None or t.expires_at > now)
               for t in deps.identity.list_tokens(conn, ROOT))


def policy_in_force(deps: Deps, conn: Connection) -> ApprovalPolicy:
    """The stored approval policy, or the default one."""
    raw = deps.system.get_config(conn, POLICY_CONFIG)
    if raw is None:
        return DEFAULT_POLICY
    try:
        return ApprovalPolicy.from_json(raw)
    except InvalidArgument:
        log.exception("stored approval policy is invalid")
        raise Internal("the stored approval policy is invalid") from None


def role_operations(deps: Deps, conn: Connection) -> dict[str, Sequence[str]]:
    """Role name -> its operations."""
    return {r.name: r.operations for r in deps.identity.list_roles(conn)}

# An approved request run later as its requester: (ctx, arguments) -> JSON-able result.
Executor = Callable[[RequestContext, dict[str, Any]], dict[str, Any]]


class Gate(Protocol):
    """The dual-control gate (service/approvals.py): returns when the call may proceed,
    raises ApprovalRequired (202) when it must wait for approvals."""

    def __call__(self, ctx: RequestContext, operation: str, arguments: dict[str, Any], *,
                 summary: str, namespace: str | None = None,
                 key_id: str | None = None) -> None: ...


class IdentityBase:
    """Collaborators of one administration service. ``gate`` is optional so that the
    service works (without dual control) before an approvals service is wired in."""

    def __init__(self, deps: Deps, authz: Authorizer, auth: TokenAuthenticator,
                 gate: Gate | None = None) -> None:
        self._d = deps
        self._authz = authz
        self._auth = auth
        self.gate = gate

    def _require(self, ctx: RequestContext, operation: str) -> Principal:
        return self._authz.require(ctx, operation)

    def _gate(self, ctx: RequestContext, operation: str, arguments: dict[str, Any],
              summary: str) -> None:
        """Dual control: after validation and permission checks, before the transaction."""
        if self.gate is not None:
            self.gate(ctx, operation, arguments, summary=summary)

    def _changed(self) -> None:
        """Make a change take effect in this process now (other nodes: within 1 s)."""
        self._authz.invalidate()
        self._auth.forget()

    def _conflicts(self, conn: Connection) -> tuple[tuple[str, str], ...]:
        value = self._d.system.get_config(conn, SOD_CONFIG)
        return DEFAULT_SOD_CONFLICTS if value is None else parse_conflicts(value)

    def _root_token_active(self, conn: Connection) -> bool:
        return root_token_active(self._d, conn)

    def _reachable(self, conn: Connection, people: list[Principal],
                   revoking: str | None = None) -> list[Principal]:
        """The principals among ``people`` that can still make a call: an unexpired,
        unrevoked token (other than the one being revoked, ``revoking`` = its hash), or a
        client-certificate subject. A custodian nobody can act as cannot approve."""
        now = self._d.clock()
        with_token = {t.principal for t in self._d.identity.list_tokens(conn)
                      if t.revoked_at is None and t.token_hash != revoking
                      and (t.expires_at is None or t.expires_at > now)}
        return [p for p in people if p.name in with_token or p.certificate_subjects]

    def _keep_administrable(self, conn: Connection, *, name: str | None = None,
                            after: Principal | None = None,
                            roles: Mapping[str, Sequence[str]] | None = None,
                            revoking: str | None = None,
                            what: str = "this change") -> None:
        """Once every root token is revoked, refuse a change that would leave nobody able
        to administer access (FailedPrecondition, naming why):

        * principal ``name`` becomes ``after`` (None: deleted), or roles get the operations
          in ``roles``;
        * or the token with hash ``revoking`` is revoked;
        * refused when it leaves no enabled security officer, or when a rule of the
          approval policy would have fewer eligible approvers than it requires (and fewer
          than before): nothing under that rule could ever run again. Only principals
          someone can act as (a live token or a certificate subject) count."""
        if self._root_token_active(conn):
            return
        everyone = self._d.identity.list_principals(conn)
        changed = everyone
        if name is not None:
            changed = [p for p in everyone if p.name != name]
            if after is not None:
                changed.append(after)
        # Only principals someone can act as count (a token, or a certificate subject).
        principals = self._reachable(conn, everyone)
        changed = self._reachable(conn, changed, revoking)

        def officers(people: list[Principal]) -> int:
            return sum(1 for p in people if not p.disabled and OFFICER in p.roles)

        if officers(principals) and not officers(changed):
            raise FailedPrecondition(
                f"'{name}' is the last enabled security officer and no root token is "
                "active: appoint another security officer first")
        ops_before = role_operations(self._d, conn)
        ops_after = {**ops_before, **(roles or {})}
        for rule in policy_in_force(self._d, conn).rules:
            before = len(eligible_approvers(rule, principals, ops_before))
            left = len(eligible_approvers(rule, changed, ops_after))
            if left < rule.required and left < before:
                raise FailedPrecondition(
                    f"{what} would leave too few approvers and no root token is active: "
                    f"{shortfall(rule, left)}; appoint another approver first, or nothing "
                    "under that rule could run again")

    def _check_approvers_suffice(self, conn: Connection, why: str) -> None:
        """Every rule of the approval policy has at least M eligible approvers, else
        FailedPrecondition saying how many of which role are missing."""
        principals = self._reachable(conn, self._d.identity.list_principals(conn))
        ops = role_operations(self._d, conn)
        for rule in policy_in_force(self._d, conn).rules:
            have = len(eligible_approvers(rule, principals, ops))
            if have < rule.required:
                raise FailedPrecondition(f"{shortfall(rule, have)}: {why}")
