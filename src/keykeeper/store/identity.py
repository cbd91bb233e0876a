"""Repository of principals, roles, grants and tokens (access control).

Every function takes an open ``Connection``; the service layer owns the transaction.
Tokens are stored only as SHA-256 hashes, with a public ``accessor`` to list and revoke
them without the secret (as Vault's token accessors).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from keykeeper.authz.condition import parse_condition
from keykeeper.authz.model import Grant, Principal, Role, Scope
from keykeeper.errors import AlreadyExists
from keykeeper.store.convert import utc
from keykeeper.store.schema import grants, principals, roles, tokens

__all__ = ["IdentityRepository", "TokenInfo"]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token without its secret."""

    accessor: str
    token_hash: str
    principal: str
    display_name: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    ttl: int | None


def _principal(r: Any) -> Principal:
    return Principal(
        name=r.name, kind=r.kind, roles=tuple(json.loads(r.roles)),
        metadata=MappingProxyType(json.loads(r.metadata)),
        certificate_subjects=tuple(json.loads(r.certificate_subjects)),
        rate_limit=r.rate_limit, disabled=bool(r.disabled), created_by=r.created_by,
        created_at=utc(r.created_at), updated_at=utc(r.updated_at))


def _role(r: Any) -> Role:
    return Role(name=r.name, description=r.description,
                operations=tuple(json.loads(r.operations)), builtin=bool(r.builtin),
                created_at=utc(r.created_at), updated_at=utc(r.updated_at))


def _grant(r: Any) -> Grant:
    return Grant(
        id=r.id, grantee_kind=r.grantee_kind, grantee=r.grantee,
        operations=tuple(json.loads(r.operations)),
        scope=Scope(namespace=r.namespace, key_pattern=r.key_pattern,
                    labels=MappingProxyType(json.loads(r.labels))),
        condition=parse_condition(r.condition) if r.condition else None,
        created_by=r.created_by, created_at=utc(r.created_at))


def _token(r: Any) -> TokenInfo:
    created = utc(r.created_at)
    assert created is not None
    return TokenInfo(accessor=r.accessor or "", token_hash=r.token_hash, principal=r.principal,
                     display_name=r.display_name, created_by=r.created_by, created_at=created,
                     expires_at=utc(r.expires_at), revoked_at=utc(r.revoked_at), ttl=r.ttl)


class IdentityRepository:
    # -- principals ---------------------------------------------------------------------
    def insert_principal(self, conn: Connection, p: Principal) -> None:
        try:
            conn.execute(insert(principals).values(
                name=p.name, kind=p.kind, roles=json.dumps(list(p.roles)),
                metadata=json.dumps(dict(p.metadata)),
                certificate_subjects=json.dumps(list(p.certificate_subjects)),
                rate_limit=p.rate_limit, disabled=p.disabled, created_by=p.created_by,
                created_at=p.created_at, updated_at=p.updated_at))
        except IntegrityError:
            raise AlreadyExists(f"principal '{p.name}' already exists") from None

    def update_principal(self, conn: Connection, p: Principal) -> None:
        conn.execute(update(principals).where(principals.c.name == p.name).values(
            kind=p.kind, roles=json.dumps(list(p.roles)), metadata=json.dumps(dict(p.metadata)),
            certificate_subjects=json.dumps(list(p.certificate_subjects)),
            rate_limit=p.rate_limit, disabled=p.disabled, updated_at=p.updated_at))

    def delete_principal(self, conn: Connection, name: str) -> bool:
        conn.execute(delete(grants).where(grants.c.grantee_kind == "principal",
                                          grants.c.grantee == name))
        return conn.execute(delete(principals).where(principals.c.name == name)).rowcount > 0

    def get_principal(self, conn: Connection, name: str, *,
                      for_update: bool = False) -> Principal | None:
        q = select(principals).where(principals.c.name == name)
        if for_update:
            q = q.with_for_update()
        r = conn.execute(q).first()
        return None if r is None else _principal(r)

    def list_principals(self, conn: Connection, *, role: str | None = None) -> list[Principal]:
        rows = [_principal(r) for r in conn.execute(select(principals)
                                                    .order_by(principals.c.name))]
        return [p for p in rows if role is None or role in p.roles]

    def principal_for_subject(self, conn: Connection, subjects: set[str]) -> Principal | None:
        """The principal one of whose certificate subjects is in ``subjects``."""
        for r in conn.execute(select(principals).where(principals.c.certificate_subjects
                                                      != "[]")):
            p = _principal(r)
            if subjects.intersection(p.certificate_subjects):
                return p
        return None

    # -- roles ----------------------------------------------------------------------------
    def insert_role(self, conn: Connection, role: Role) -> None:
        try:
            conn.execute(insert(roles).values(
                name=role.name, description=role.description,
                operations=json.dumps(list(role.operations)), builtin=role.builtin,
                created_at=role.created_at, updated_at=role.updated_at))
        except IntegrityError:
            raise AlreadyExists(f"role '{role.name}' already exists") from None

    def update_role(self, conn: Connection, role: Role) -> None:
        conn.execute(update(roles).where(roles.c.name == role.name).values(
            description=role.description, operations=json.dumps(list(role.operations)),
            updated_at=role.updated_at))

    def delete_role(self, conn: Connection, name: str) -> bool:
        conn.execute(delete(grants).where(grants.c.grantee_kind == "role",
                                          grants.c.grantee == name))
        return conn.execute(delete(roles).where(roles.c.name == name)).rowcount > 0

    def get_role(self, conn: Connection, name: str) -> Role | None:
        r = conn.execute(select(roles).where(roles.c.name == name)).first()
        return None if r is None else _role(r)

    def list_roles(self, conn: Connection) -> list[Role]:
        return [_role(r) for r in conn.execute(select(roles).order_by(roles.c.name))]

    # -- grants ---------------------------------------------------------------------------
    def insert_grant(self, conn: Connection, g: Grant) -> None:
        try:
            conn.execute(insert(grants).values(
                id=g.id, grantee_kind=g.grantee_kind, grantee=g.grantee,
                operations=json.dumps(list(g.operations)), namespace=g.scope.namespace,
                key_pattern=g.scope.key_pattern, labels=json.dumps(dict(g.scope.labels)),
                condition=str(g.condition) if g.condition else None, created_by=g.created_by,
                created_at=g.created_at))
        except IntegrityError:
            raise AlreadyExists(f"grant '{g.id}' already exists") from None

    def delete_grant(self, conn: Connection, grant_id: str) -> bool:
        return conn.execute(delete(grants).where(grants.c.id == grant_id)).rowcount > 0

    def get_grant(self, conn: Connection, grant_id: str) -> Grant | None:
        r = conn.execute(select(grants).where(grants.c.id == grant_id)).first()
        return None if r is None else _grant(r)

    def list_grants(self, conn: Connection, *, grantee_kind: str | None = None,
                    grantee: str | None = None, namespace: str | None = None) -> list[Grant]:
        q = select(grants).order_by(grants.c.created_at, grants.c.id)
        if grantee_kind is not None:
            q = q.where(grants.c.grantee_kind == grantee_kind)
        if grantee is not None:
            q = q.where(grants.c.grantee == grantee)
        if namespace is not None:
            q = q.where(grants.c.namespace == namespace)
        return [_grant(r) for r in conn.execute(q)]

    # -- tokens ---------------------------------------------------------------------------
    def insert_token(self, conn: Connection, *, token_hash: str, accessor: str, principal: str,
                     display_name: str, created_by: str, created_at: datetime,
                     expires_at: datetime | None, ttl: int | None) -> None:
        conn.execute(insert(tokens).values(
            token_hash=token_hash, accessor=accessor, principal=principal, policies="[]",
            display_name=display_name, created_by=created_by, created_at=created_at,
            expires_at=expires_at, ttl=ttl))

    def get_token_by_accessor(self, conn: Connection, accessor: str) -> TokenInfo | None:
        r = conn.execute(select(tokens).where(tokens.c.accessor == accessor)).first()
        return None if r is None else _token(r)

    def get_token_by_hash(self, conn: Connection, token_hash: str) -> TokenInfo | None:
        r = conn.execute(select(tokens).where(tokens.c.token_hash == token_hash)).first()
        return None if r is None else _token(r)

    def list_tokens(self, conn: Connection, principal: str | None = None) -> list[TokenInfo]:
        q = select(tokens).order_by(tokens.c.created_at)
        if principal is not None:
            q = q.where(tokens.c.principal == principal)
        return [_token(r) for r in conn.execute(q)]

    def revoke_token(self, conn: Connection, token_hash: str, at: datetime) -> None:
        conn.execute(update(tokens).where(tokens.c.token_hash == token_hash,
                                          tokens.c.revoked_at.is_(None)).values(revoked_at=at))

    def revoke_tokens_of(self, conn: Connection, principal: str, at: datetime) -> int:
        return conn.execute(update(tokens).where(tokens.c.principal == principal,
                                                 tokens.c.revoked_at.is_(None))
                            .values(revoked_at=at)).rowcount

    def set_token_expiry(self, conn: Connection, token_hash: str,
                         expires_at: datetime | None) -> None:
        conn.execute(update(tokens).where(tokens.c.token_hash == token_hash)
                     .values(expires_at=expires_at))


def labels_json(labels: Mapping[str, str]) -> str:
    return json.dumps(dict(labels), sort_keys=True)
