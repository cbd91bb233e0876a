"""Access-control administration as one object (``Services.identity``): principals,
tokens, roles, grants and the separation-of-duties policy.

Each part lives in its own module: service/principals.py (principals, SoD policy),
service/tokens.py, service/roles.py (roles, grants); certificate authentication is
service/cert_auth.py (``Services.auth.authenticate_certificate``). Every method checks the
caller's permission first (``Authorizer.require`` with the operation names of
authz/operations.py), validates, passes the dual-control gate where the operation may be
under dual control, and makes its change in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keykeeper.service.approval_args import Claimable
from keykeeper.service.auth import TokenAuthenticator
from keykeeper.service.authorizer import Authorizer
from keykeeper.service.context import RequestContext
from keykeeper.service.deps import Deps
from keykeeper.service.identity_base import Executor, Gate
from keykeeper.service.identity_views import grant_view, principal_view, rfc3339, role_view
from keykeeper.service.principals import PrincipalAdmin
from keykeeper.service.roles import GrantAdmin, RoleAdmin
from keykeeper.service.tokens import DEFAULT_TTL, MAX_TTL, TokenAdmin

__all__ = ["GATED_OPERATIONS", "IdentityService"]

# Operations that call the dual-control gate (and so have an executor).
GATED_OPERATIONS = ("principal.create", "principal.update", "token.create", "role.create",
                    "role.update", "role.delete", "grant.create", "grant.delete",
                    "sod_policy.update")


class IdentityService:
    def __init__(self, deps: Deps, authz: Authorizer, auth: TokenAuthenticator, *,
                 gate: Gate | None = None, max_token_ttl: int = MAX_TTL,
                 default_token_ttl: int = DEFAULT_TTL) -> None:
        self.principals = PrincipalAdmin(deps, authz, auth)
        self.roles = RoleAdmin(deps, authz, auth)
        self.grants = GrantAdmin(deps, authz, auth)
        self.tokens = TokenAdmin(deps, authz, auth, max_ttl=max_token_ttl,
                                 default_ttl=default_token_ttl)
        self.set_gate(gate)

    def set_gate(self, gate: Gate | None) -> None:
        """Wire the dual-control gate (service/approvals.py); None: no dual control."""
        for part in (self.principals, self.roles, self.grants, self.tokens):
            part.gate = gate

    def executors(self) -> dict[str, Executor]:
        """How an approved request is run later, as its requester (``ctx.approval_id`` set,
        so the gate lets it through): operation -> fn(ctx, arguments) -> JSON-able result.
        ``arguments`` are exactly what the gate was given."""
        p, r, g, t = self.principals, self.roles, self.grants, self.tokens

        def principal_create(ctx: RequestContext, a: dict[str, Any]) -> dict[str, Any]:
            return principal_view(p.create(ctx, **a))

        def principal_update(ctx: RequestContext, a: dict[str, Any]) -> dict[str, Any]:
            return principal_view(p.update(ctx, a["name"], a["changes"],
                                           expect=a.get("expect")))

        def token_create(ctx: RequestContext, a: dict[str, Any]) -> dict[str, Any]:
            # The secret is for the requester alone: stored wrapped, claimed once.
            made = t.create(ctx, principal=a["principal"], ttl=a["ttl"],
                            display_name=a["display_name"], approved_roles=a["roles"],
                            expect=a.get("expect"))
            return {"token": Claimable(made.token), "accessor": made.info.accessor,
                    "principal": made.info.principal, "display_name": made.info.display_name,
                    "expires_at": rfc3339(made.info.expires_at), "ttl": made.info.ttl}

        def role_create(ctx: RequestContext, a: dict[str, Any]) -> dict[str, Any]:
            return role_view(r.create(ctx, **a))

        def role_update(ctx: RequestContext, a: dict[str, Any]) -> dict[str, Any]:
            return role_view(r.update(ctx, a["name"], description=a.get("description"),
                                      operations=a.get("operations")))

        def role_delete(ctx: RequestContext, a: dict[str, Any]) -> dict[str, Any]:
            return r.delete(ctx, a["name"])

        def grant_create(ctx: RequestContext, a: dict[str, Any]) -> dict[str, Any]:
            return grant_view(g.create(ctx, **a))

        def grant_delete(ctx: RequestContext, a: dict[str, Any]) -> dict[str, Any]:
            return g.delete(ctx, a["id"])

        def sod_update(ctx: RequestContext, a: dict[str, Any]) -> dict[str, Any]:
            return {"conflicts": [list(c) for c in p.set_sod(ctx, a["conflicts"])]}

        return {"principal.create": principal_create, "principal.update": principal_update,
                "token.create": token_create, "role.create": role_create,
                "role.update": role_update, "role.delete": role_delete,
                "grant.create": grant_create,
                "grant.delete": grant_delete, "sod_policy.update": sod_update}

    def register_executors(self, register: Callable[[str, Executor], None]) -> None:
        """Hand every executor to the approvals service (``approvals.register``)."""
        for operation, fn in self.executors().items():
            register(operation, fn)
