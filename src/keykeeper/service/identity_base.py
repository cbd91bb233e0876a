"""What the access-control administration services share: permission checks, the
dual-control gate, separation-of-duties configuration, cache invalidation, and the guard
that keeps someone able to administer access once the root token is gone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import Connection

from keykeeper.authz.builtin import DEFAULT_SOD_CONFLICTS
from keykeeper.authz.model import ROOT, Principal
from keykeeper.authz.sod import parse_conflicts
from keykeeper.errors import FailedPrecondition
from keykeeper.service.auth import TokenAuthenticator
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.builtin import SOD_CONFIG
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps

__all__ = ["OFFICER", "Executor", "Gate", "IdentityBase"]

OFFICER = "security-officer"

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
        now = self._d.clock()
        return any(t.revoked_at is None and (t.expires_at is None or t.expires_at > now)
                   for t in self._d.identity.list_tokens(conn, ROOT))

    def _keep_an_officer(self, conn: Connection, name: str, after: Principal | None) -> None:
        """Once every root token is revoked, refuse a change (delete, disable, role removal)
        of principal ``name`` that would leave no enabled security officer: nobody could
        administer access any more."""
        if after is not None and not after.disabled and OFFICER in after.roles:
            return
        others = [p for p in self._d.identity.list_principals(conn, role=OFFICER)
                  if p.name != name and not p.disabled]
        if others or self._root_token_active(conn):
            return
        before = self._d.identity.get_principal(conn, name)
        if before is not None and not before.disabled and OFFICER in before.roles:
            raise FailedPrecondition(
                f"'{name}' is the last enabled security officer and no root token is "
                "active: appoint another security officer first")
