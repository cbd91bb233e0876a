"""Typed results of the access-control routes (principals, tokens, roles, grants, the
separation-of-duties policy), as frozen msgspec Structs. Times are timezone-aware UTC
datetimes; ``ttl`` is seconds; ``rate_limit`` is requests per second."""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = [
    "Grant",
    "GrantDeleted",
    "NewToken",
    "Principal",
    "PrincipalDeleted",
    "Role",
    "RoleDeleted",
    "TokenInfo",
    "WhoAmI",
]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who calls: ``kind`` is ``person`` or ``service``; ``certificate_subjects`` are the
    RFC 4514 DNs or ``DNS:``/``URI:``/``email:``/``IP:`` entries it authenticates with."""

    name: str
    kind: str
    roles: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    certificate_subjects: list[str] = msgspec.field(default_factory=list)
    rate_limit: float | None = None
    disabled: bool = False
    created_by: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PrincipalDeleted(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    tokens_revoked: int = 0
    grants_deleted: int = 0


class NewToken(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /v1/tokens``: the secret ``token`` is shown once (hidden from ``repr``)."""

    token: str
    accessor: str
    principal: str
    expires_at: datetime
    ttl: int
    display_name: str = ""

    def __repr__(self) -> str:
        return (f"NewToken(token=<hidden>, accessor={self.accessor!r}, "
                f"principal={self.principal!r}, expires_at={self.expires_at!r})")


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A token without its secret; ``state`` is ``active``, ``expired`` or ``revoked``."""

    accessor: str
    principal: str
    state: str
    display_name: str = ""
    created_by: str = ""
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    ttl: int | None = None


class _Tokens(msgspec.Struct, frozen=True):
    tokens: list[TokenInfo]


class WhoAmI(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /v1/tokens/self``: the caller and the token it called with."""

    principal: str
    kind: str
    roles: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    accessor: str | None = None
    display_name: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    ttl: int | None = None


class _RootRevoked(msgspec.Struct, frozen=True):
    revoked: int


class Role(msgspec.Struct, frozen=True, kw_only=True):
    """A named set of operation names or patterns (``encrypt``, ``key.*``, ``*``)."""

    name: str
    operations: list[str]
    description: str = ""
    builtin: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class RoleDeleted(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    grants_deleted: int = 0


class Grant(msgspec.Struct, frozen=True, kw_only=True):
    """Key ``operations`` for ``grantee`` (``principal:NAME`` or ``role:NAME``) on the keys
    of ``namespace`` (or ``*``) whose names match ``key_pattern`` and whose labels
    include ``labels``, when ``condition`` holds for the encryption context."""

    id: str
    grantee: str
    operations: list[str]
    namespace: str = "*"
    key_pattern: str = "*"
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    condition: str | None = None
    created_by: str = ""
    created_at: datetime | None = None


class GrantDeleted(msgspec.Struct, frozen=True, kw_only=True):
    id: str


class _Principals(msgspec.Struct, frozen=True):
    principals: list[Principal]


class _Roles(msgspec.Struct, frozen=True):
    roles: list[Role]


class _Grants(msgspec.Struct, frozen=True):
    grants: list[Grant]


class _Sod(msgspec.Struct, frozen=True):
    conflicts: list[tuple[str, str]]
