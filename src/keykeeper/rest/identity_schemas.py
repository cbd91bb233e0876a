"""msgspec structs of the access-control routes: principals, tokens, roles, grants and the
separation-of-duties policy (rest/identity_routes.py). Times are RFC 3339 UTC strings;
``ttl`` and ``rate_limit`` are seconds and requests per second. In a PATCH body a field
left out keeps its value; ``rate_limit: null`` clears the principal's own limit."""

from __future__ import annotations

from msgspec import UNSET, Struct, UnsetType

TTL = int | str  # seconds, or a string such as "30d"


# -- principals ------------------------------------------------------------------------------
class CreatePrincipalRequest(Struct, forbid_unknown_fields=True):
    name: str
    kind: str = "service"                      # "person" | "service"
    roles: list[str] = []
    metadata: dict[str, str] = {}
    certificate_subjects: list[str] = []       # RFC 4514 DNs or DNS:/URI:/email:/IP: entries
    rate_limit: float | None = None


class UpdatePrincipalRequest(Struct, forbid_unknown_fields=True):
    kind: str | UnsetType = UNSET
    roles: list[str] | UnsetType = UNSET
    metadata: dict[str, str] | UnsetType = UNSET
    certificate_subjects: list[str] | UnsetType = UNSET
    rate_limit: float | UnsetType | None = UNSET
    disabled: bool | UnsetType = UNSET


class PrincipalOut(Struct):
    name: str
    kind: str
    roles: list[str]
    metadata: dict[str, str]
    certificate_subjects: list[str]
    rate_limit: float | None
    disabled: bool
    created_by: str
    created_at: str
    updated_at: str


class PrincipalList(Struct):
    principals: list[PrincipalOut]


class PrincipalDeleted(Struct):
    name: str
    tokens_revoked: int
    grants_deleted: int


# -- tokens ------------------------------------------------------------------------------------
class CreateTokenRequest(Struct, forbid_unknown_fields=True):
    principal: str
    ttl: TTL | None = None                     # default 30 days; at most the server maximum
    display_name: str | None = None


class TokenCreated(Struct):
    """The secret ``token`` is shown this once; the server keeps only its hash."""

    token: str
    accessor: str
    principal: str
    display_name: str
    expires_at: str
    ttl: int


class TokenOut(Struct):
    accessor: str
    principal: str
    display_name: str
    created_by: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    ttl: int | None
    state: str                                 # active | expired | revoked


class TokenList(Struct):
    tokens: list[TokenOut]


class TokenSelf(Struct):
    principal: str
    kind: str
    roles: list[str]
    metadata: dict[str, str]
    accessor: str | None
    display_name: str | None
    created_at: str | None
    expires_at: str | None
    ttl: int | None


class RootRevoked(Struct):
    revoked: int


# -- roles -------------------------------------------------------------------------------------
class CreateRoleRequest(Struct, forbid_unknown_fields=True):
    name: str
    operations: list[str]
    description: str = ""


class UpdateRoleRequest(Struct, forbid_unknown_fields=True):
    description: str | None = None
    operations: list[str] | None = None


class RoleOut(Struct):
    name: str
    description: str
    operations: list[str]
    builtin: bool
    created_at: str
    updated_at: str


class RoleList(Struct):
    roles: list[RoleOut]


class RoleDeleted(Struct):
    name: str
    grants_deleted: int


# -- grants ------------------------------------------------------------------------------------
class CreateGrantRequest(Struct, forbid_unknown_fields=True):
    grantee: str                               # "principal:NAME" | "role:NAME"
    operations: list[str]
    namespace: str = "*"
    key_pattern: str = "*"
    labels: dict[str, str] = {}
    condition: str | None = None               # e.g. context.tenant == principal.metadata.tenant


class GrantOut(Struct):
    id: str
    grantee: str
    operations: list[str]
    namespace: str
    key_pattern: str
    labels: dict[str, str]
    condition: str | None
    created_by: str
    created_at: str


class GrantList(Struct):
    grants: list[GrantOut]


class GrantDeleted(Struct):
    id: str


# -- separation of duties ----------------------------------------------------------------------
class SodPolicy(Struct, forbid_unknown_fields=True):
    """Pairs of roles no principal may hold together."""

    conflicts: list[tuple[str, str]]
