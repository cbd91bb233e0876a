"""Handlers of the access-control routes (rest/identity_routes.py): decoded request struct
in, response struct out. Every check happens in service/ (``svc.identity``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from keykeeper.rest import identity_schemas as s
from keykeeper.rest.schemas import Empty
from keykeeper.service.context import RequestContext
from keykeeper.service.facade import Services
from keykeeper.service.identity_views import (
    grant_view,
    principal_view,
    rfc3339,
    role_view,
    token_view,
)
from keykeeper.service.principals import PATCH_FIELDS
from keykeeper.store.identity import TokenInfo

Params = Mapping[str, str]


def _principal(value: Any) -> s.PrincipalOut:
    return msgspec.convert(principal_view(value), s.PrincipalOut)


def _token(svc: Services, t: TokenInfo) -> s.TokenOut:
    return msgspec.convert(token_view(t, svc.deps.clock()), s.TokenOut)


# -- principals ------------------------------------------------------------------------------
def create_principal(svc: Services, ctx: RequestContext, p: Params,
                     body: s.CreatePrincipalRequest) -> s.PrincipalOut:
    return _principal(svc.identity.principals.create(
        ctx, name=body.name, kind=body.kind, roles=body.roles, metadata=body.metadata,
        certificate_subjects=body.certificate_subjects, rate_limit=body.rate_limit))


def list_principals(svc: Services, ctx: RequestContext, p: Params,
                    body: None) -> s.PrincipalList:
    found = svc.identity.principals.list(ctx, role=p.get("role") or None)
    return s.PrincipalList(principals=[_principal(x) for x in found])


def get_principal(svc: Services, ctx: RequestContext, p: Params,
                  body: None) -> s.PrincipalOut:
    return _principal(svc.identity.principals.get(ctx, p["name"]))


def update_principal(svc: Services, ctx: RequestContext, p: Params,
                     body: s.UpdatePrincipalRequest) -> s.PrincipalOut:
    changes = {f: getattr(body, f) for f in PATCH_FIELDS
               if getattr(body, f) is not msgspec.UNSET}
    return _principal(svc.identity.principals.update(ctx, p["name"], changes))


def delete_principal(svc: Services, ctx: RequestContext, p: Params,
                     body: None) -> s.PrincipalDeleted:
    return msgspec.convert(svc.identity.principals.delete(ctx, p["name"]), s.PrincipalDeleted)


# -- tokens ------------------------------------------------------------------------------------
def create_token(svc: Services, ctx: RequestContext, p: Params,
                 body: s.CreateTokenRequest) -> s.TokenCreated:
    made = svc.identity.tokens.create(ctx, principal=body.principal, ttl=body.ttl,
                                      display_name=body.display_name)
    info = made.info
    assert info.expires_at is not None and info.ttl is not None
    return s.TokenCreated(token=made.token, accessor=info.accessor, principal=info.principal,
                          display_name=info.display_name,
                          expires_at=rfc3339(info.expires_at) or "", ttl=info.ttl)


def list_tokens(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.TokenList:
    found = svc.identity.tokens.list(ctx, principal=p.get("principal") or None)
    return s.TokenList(tokens=[_token(svc, t) for t in found])


def lookup_self(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.TokenSelf:
    return msgspec.convert(svc.identity.tokens.lookup_self(ctx), s.TokenSelf)


def revoke_token(svc: Services, ctx: RequestContext, p: Params, body: Empty) -> s.TokenOut:
    return _token(svc, svc.identity.tokens.revoke(ctx, p["accessor"]))


def renew_token(svc: Services, ctx: RequestContext, p: Params, body: Empty) -> s.TokenOut:
    return _token(svc, svc.identity.tokens.renew(ctx, p["accessor"]))


def revoke_root(svc: Services, ctx: RequestContext, p: Params, body: Empty) -> s.RootRevoked:
    return s.RootRevoked(revoked=svc.identity.tokens.revoke_root(ctx))


# -- roles -------------------------------------------------------------------------------------
def create_role(svc: Services, ctx: RequestContext, p: Params,
                body: s.CreateRoleRequest) -> s.RoleOut:
    role = svc.identity.roles.create(ctx, name=body.name, operations=body.operations,
                                     description=body.description)
    return msgspec.convert(role_view(role), s.RoleOut)


def list_roles(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.RoleList:
    return s.RoleList(roles=[msgspec.convert(role_view(r), s.RoleOut)
                             for r in svc.identity.roles.list(ctx)])


def get_role(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.RoleOut:
    return msgspec.convert(role_view(svc.identity.roles.get(ctx, p["name"])), s.RoleOut)


def update_role(svc: Services, ctx: RequestContext, p: Params,
                body: s.UpdateRoleRequest) -> s.RoleOut:
    role = svc.identity.roles.update(ctx, p["name"], description=body.description,
                                     operations=body.operations)
    return msgspec.convert(role_view(role), s.RoleOut)


def delete_role(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.RoleDeleted:
    return msgspec.convert(svc.identity.roles.delete(ctx, p["name"]), s.RoleDeleted)


# -- grants ------------------------------------------------------------------------------------
def create_grant(svc: Services, ctx: RequestContext, p: Params,
                 body: s.CreateGrantRequest) -> s.GrantOut:
    grant = svc.identity.grants.create(
        ctx, grantee=body.grantee, operations=body.operations, namespace=body.namespace,
        key_pattern=body.key_pattern, labels=body.labels, condition=body.condition)
    return msgspec.convert(grant_view(grant), s.GrantOut)


def list_grants(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.GrantList:
    found = svc.identity.grants.list(ctx, grantee=p.get("grantee") or None,
                                     namespace=p.get("namespace") or None)
    return s.GrantList(grants=[msgspec.convert(grant_view(g), s.GrantOut) for g in found])


def get_grant(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.GrantOut:
    return msgspec.convert(grant_view(svc.identity.grants.get(ctx, p["id"])), s.GrantOut)


def delete_grant(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.GrantDeleted:
    return msgspec.convert(svc.identity.grants.delete(ctx, p["id"]), s.GrantDeleted)


# -- separation of duties ----------------------------------------------------------------------
def get_sod_policy(svc: Services, ctx: RequestContext, p: Params, body: None) -> s.SodPolicy:
    return s.SodPolicy(conflicts=svc.identity.principals.get_sod(ctx))


def set_sod_policy(svc: Services, ctx: RequestContext, p: Params,
                   body: s.SodPolicy) -> s.SodPolicy:
    return s.SodPolicy(conflicts=svc.identity.principals.set_sod(ctx, body.conflicts))
