"""Access-control routes of the SDK: principals, tokens, roles, grants and the
separation-of-duties policy (``/v1/principals``, ``/v1/tokens``, ``/v1/roles``,
``/v1/grants``, ``/v1/policies/separation-of-duties``).

Operations under dual control (role assignment, roles, grants, the SoD policy) raise
:class:`keykeeper.errors.ApprovalRequired` when the server answers 202; its
``approval_id`` names the pending request (``keykeeper approval approve ID``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from keykeeper.client._http import KEEP as _KEEP
from keykeeper.client._http import NULL as _NULL
from keykeeper.client._http import Http
from keykeeper.client._http import segment as _seg
from keykeeper.client.identity_models import (
    Grant,
    GrantDeleted,
    NewToken,
    Principal,
    PrincipalDeleted,
    Role,
    RoleDeleted,
    TokenInfo,
    WhoAmI,
    _Grants,
    _Principals,
    _Roles,
    _RootRevoked,
    _Sod,
    _Tokens,
)
from keykeeper.errors import InvalidArgument

__all__ = ["IdentityMixin"]



def _ttl(value: int | str | timedelta | None) -> int | str | None:
    return int(value.total_seconds()) if isinstance(value, timedelta) else value


def _list(values: Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise InvalidArgument("expected a list of strings, not one string")
    return list(values)


class IdentityMixin:
    """Mixed into :class:`~keykeeper.client.Client`."""

    _http: Http

    # -- principals -------------------------------------------------------------------------
    def create_principal(self, name: str, *, kind: str | None = None,
                         roles: Iterable[str] | None = None,
                         metadata: Mapping[str, str] | None = None,
                         certificate_subjects: Iterable[str] | None = None,
                         rate_limit: float | None = None) -> Principal:
        """``POST /v1/principals``. ``kind`` is ``person`` or ``service`` (default).
        Raises AlreadyExists, InvalidArgument (unknown role, bad field), PermissionDenied
        (missing permission, separation of duties), ApprovalRequired (roles given)."""
        body = {"name": name, "kind": kind, "roles": _list(roles),
                "metadata": dict(metadata) if metadata is not None else None,
                "certificate_subjects": _list(certificate_subjects), "rate_limit": rate_limit}
        return self._http.call("POST", "/v1/principals", Principal, body=body)

    def list_principals(self, *, role: str | None = None) -> list[Principal]:
        """``GET /v1/principals``, optionally only those holding ``role``."""
        return self._http.call("GET", "/v1/principals", _Principals,
                               params={"role": role}).principals

    def get_principal(self, name: str) -> Principal:
        """``GET /v1/principals/{name}``. Raises NotFound."""
        return self._http.call("GET", "/v1/principals/" + _seg(name, "name"), Principal)

    def update_principal(self, name: str, *, kind: str | None = None,
                         roles: Iterable[str] | None = None,
                         metadata: Mapping[str, str] | None = None,
                         certificate_subjects: Iterable[str] | None = None,
                         rate_limit: float | None = _KEEP,
                         disabled: bool | None = None) -> Principal:
        """``PATCH /v1/principals/{name}``: each argument given replaces the stored value
        (``rate_limit=None`` clears the principal's own limit; leave it out to keep it).
        A change of roles or metadata may raise ApprovalRequired."""
        body: dict[str, Any] = {
            "kind": kind, "roles": _list(roles),
            "metadata": dict(metadata) if metadata is not None else None,
            "certificate_subjects": _list(certificate_subjects), "disabled": disabled}
        if rate_limit is not _KEEP:
            body["rate_limit"] = _NULL if rate_limit is None else rate_limit
        return self._http.call("PATCH", "/v1/principals/" + _seg(name, "name"), Principal,
                               body=body)

    def disable_principal(self, name: str) -> Principal:
        """Refuse every token and certificate of ``name`` until :meth:`enable_principal`."""
        return self.update_principal(name, disabled=True)

    def enable_principal(self, name: str) -> Principal:
        return self.update_principal(name, disabled=False)

    def delete_principal(self, name: str) -> PrincipalDeleted:
        """``DELETE /v1/principals/{name}``: its tokens are revoked, its grants deleted."""
        return self._http.call("DELETE", "/v1/principals/" + _seg(name, "name"),
                               PrincipalDeleted)

    # -- tokens -----------------------------------------------------------------------------
    def create_token(self, principal: str, *, ttl: int | str | timedelta | None = None,
                     display_name: str | None = None) -> NewToken:
        """``POST /v1/tokens``: a new token for ``principal``; ``ttl`` in seconds, a
        timedelta or "30d" (server default 30 days, at least 60 s). The secret is shown
        only here. For oneself no permission is needed; for another principal (unless the
        caller is root) it raises ApprovalRequired: once approved, the caller gets the
        token with :meth:`claim_approval`."""
        body = {"principal": principal, "ttl": _ttl(ttl), "display_name": display_name}
        return self._http.call("POST", "/v1/tokens", NewToken, body=body)

    def list_tokens(self, principal: str | None = None) -> list[TokenInfo]:
        """``GET /v1/tokens``: tokens of ``principal`` (default: the caller's own)."""
        return self._http.call("GET", "/v1/tokens", _Tokens,
                               params={"principal": principal}).tokens

    def lookup_self(self) -> WhoAmI:
        """``GET /v1/tokens/self``: who the client's token belongs to, and its expiry."""
        return self._http.call("GET", "/v1/tokens/self", WhoAmI)

    whoami = lookup_self

    def revoke_token(self, accessor: str) -> TokenInfo:
        """``POST /v1/tokens/{accessor}/revoke`` (idempotent)."""
        path = f"/v1/tokens/{_seg(accessor, 'accessor')}/revoke"
        return self._http.call("POST", path, TokenInfo, body={})

    def renew_token(self, accessor: str) -> TokenInfo:
        """``POST /v1/tokens/{accessor}/renew``: expiry moves to now + the token's ttl
        (never past its maximum lifetime). Raises FailedPrecondition when it cannot."""
        path = f"/v1/tokens/{_seg(accessor, 'accessor')}/renew"
        return self._http.call("POST", path, TokenInfo, body={})

    def revoke_root_tokens(self) -> int:
        """``POST /v1/tokens/revoke-root``: retire the break-glass root token(s); answers
        how many were revoked. FailedPrecondition until a security officer exists."""
        return self._http.call("POST", "/v1/tokens/revoke-root", _RootRevoked,
                               body={}).revoked

    # -- roles ------------------------------------------------------------------------------
    def create_role(self, name: str, operations: Iterable[str], *,
                    description: str | None = None) -> Role:
        """``POST /v1/roles``; may raise ApprovalRequired."""
        body = {"name": name, "operations": _list(operations), "description": description}
        return self._http.call("POST", "/v1/roles", Role, body=body)

    def list_roles(self) -> list[Role]:
        return self._http.call("GET", "/v1/roles", _Roles).roles

    def get_role(self, name: str) -> Role:
        return self._http.call("GET", "/v1/roles/" + _seg(name, "name"), Role)

    def update_role(self, name: str, *, operations: Iterable[str] | None = None,
                    description: str | None = None) -> Role:
        """``PATCH /v1/roles/{name}`` (built-in roles too); may raise ApprovalRequired."""
        body = {"operations": _list(operations), "description": description}
        return self._http.call("PATCH", "/v1/roles/" + _seg(name, "name"), Role, body=body)

    def delete_role(self, name: str) -> RoleDeleted:
        """``DELETE /v1/roles/{name}``. FailedPrecondition for a built-in or held role."""
        return self._http.call("DELETE", "/v1/roles/" + _seg(name, "name"), RoleDeleted)

    # -- grants -----------------------------------------------------------------------------
    def create_grant(self, grantee: str, operations: Iterable[str], *,
                     namespace: str | None = None, key_pattern: str | None = None,
                     labels: Mapping[str, str] | None = None,
                     condition: str | None = None) -> Grant:
        """``POST /v1/grants``: ``grantee`` is ``principal:NAME`` or ``role:NAME``;
        ``condition`` e.g. ``context.tenant == principal.metadata.tenant``."""
        body = {"grantee": grantee, "operations": _list(operations), "namespace": namespace,
                "key_pattern": key_pattern,
                "labels": dict(labels) if labels is not None else None, "condition": condition}
        return self._http.call("POST", "/v1/grants", Grant, body=body)

    def list_grants(self, *, grantee: str | None = None,
                    namespace: str | None = None) -> list[Grant]:
        return self._http.call("GET", "/v1/grants", _Grants,
                               params={"grantee": grantee, "namespace": namespace}).grants

    def get_grant(self, grant_id: str) -> Grant:
        return self._http.call("GET", "/v1/grants/" + _seg(grant_id, "grant id"), Grant)

    def delete_grant(self, grant_id: str) -> GrantDeleted:
        return self._http.call("DELETE", "/v1/grants/" + _seg(grant_id, "grant id"),
                               GrantDeleted)

    # -- separation of duties -----------------------------------------------------------------
    def get_sod_policy(self) -> list[tuple[str, str]]:
        """The role pairs nobody may hold together."""
        return self._http.call("GET", "/v1/policies/separation-of-duties", _Sod).conflicts

    def set_sod_policy(self, conflicts: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Replace the policy. FailedPrecondition (naming them) if current principals
        already violate it; may raise ApprovalRequired."""
        body = {"conflicts": [list(pair) for pair in conflicts]}
        return self._http.call("PUT", "/v1/policies/separation-of-duties", _Sod,
                               body=body).conflicts
