"""The access-control rows of the route table (rest/routes.py appends them): principals,
tokens, roles, grants and the separation-of-duties policy.

Built by a function, called by rest/routes.py once ``Route`` exists, so that either
module can be imported first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from keykeeper.rest import identity_handlers as h
from keykeeper.rest import identity_schemas as s
from keykeeper.rest.schemas import Empty

if TYPE_CHECKING:
    from keykeeper.rest.routes import Route

__all__ = ["identity_routes"]

P, T, R, G = "/v1/principals", "/v1/tokens", "/v1/roles", "/v1/grants"
SOD = "/v1/policies/separation-of-duties"


def identity_routes() -> tuple[Route, ...]:
    from keykeeper.rest.routes import Route

    return (
        Route("POST", P, "principal.create", h.create_principal, s.CreatePrincipalRequest,
              s.PrincipalOut, "Create a principal (roles: dual control)", status=201),
        Route("GET", P, "principal.list", h.list_principals, None, s.PrincipalList,
              "List principals (filter: role)", query=("role",)),
        Route("GET", P + "/{name}", "principal.get", h.get_principal, None, s.PrincipalOut,
              "Show a principal"),
        Route("PATCH", P + "/{name}", "principal.update", h.update_principal,
              s.UpdatePrincipalRequest, s.PrincipalOut,
              "Change a principal (fields given replace; a change of roles, metadata or "
              "certificate subjects: dual control; disabled: true refuses its credentials)"),
        Route("DELETE", P + "/{name}", "principal.delete", h.delete_principal, None,
              s.PrincipalDeleted, "Delete a principal, its tokens and its grants"),
        Route("POST", T, "token.create", h.create_token, s.CreateTokenRequest, s.TokenCreated,
              "Create a token: for oneself without permission; for another principal under "
              "dual control, the requester then claims it (the secret is shown once)",
              status=201),
        Route("GET", T, "token.list", h.list_tokens, None, s.TokenList,
              "List tokens of a principal, without secrets (default: your own)",
              query=("principal",)),
        Route("GET", T + "/self", "token.lookup_self", h.lookup_self, None, s.TokenSelf,
              "Who am I: principal, roles and the token of this call"),
        Route("POST", T + "/revoke-root", "token.revoke_root", h.revoke_root, Empty,
              s.RootRevoked, "Revoke every root token (needs an enabled security officer and "
              "enough approvers for every rule of the approval policy)"),
        Route("POST", T + "/{accessor}/revoke", "token.revoke", h.revoke_token, Empty,
              s.TokenOut, "Revoke a token by accessor"),
        Route("POST", T + "/{accessor}/renew", "token.renew", h.renew_token, Empty,
              s.TokenOut, "Extend a token's expiry to now + its ttl"),
        Route("POST", R, "role.create", h.create_role, s.CreateRoleRequest, s.RoleOut,
              "Create a role (dual control)", status=201),
        Route("GET", R, "role.list", h.list_roles, None, s.RoleList, "List roles"),
        Route("GET", R + "/{name}", "role.get", h.get_role, None, s.RoleOut, "Show a role"),
        Route("PATCH", R + "/{name}", "role.update", h.update_role, s.UpdateRoleRequest,
              s.RoleOut, "Change a role's description or operations (dual control)"),
        Route("DELETE", R + "/{name}", "role.delete", h.delete_role, None, s.RoleDeleted,
              "Delete a role that nobody holds, and its grants (dual control)"),
        Route("POST", G, "grant.create", h.create_grant, s.CreateGrantRequest, s.GrantOut,
              "Grant key operations on a scope to a principal or role (dual control)",
              status=201),
        Route("GET", G, "grant.list", h.list_grants, None, s.GrantList,
              "List grants (filters: grantee=principal:NAME|role:NAME, namespace)",
              query=("grantee", "namespace")),
        Route("GET", G + "/{id}", "grant.get", h.get_grant, None, s.GrantOut, "Show a grant"),
        Route("DELETE", G + "/{id}", "grant.delete", h.delete_grant, None, s.GrantDeleted,
              "Delete a grant (dual control)"),
        Route("GET", SOD, "sod_policy.get", h.get_sod_policy, None, s.SodPolicy,
              "The separation-of-duties policy: role pairs nobody holds together"),
        Route("PUT", SOD, "sod_policy.update", h.set_sod_policy, s.SodPolicy, s.SodPolicy,
              "Replace the separation-of-duties policy (dual control)"),
    )
