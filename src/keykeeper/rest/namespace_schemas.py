"""msgspec structs of the namespace routes (rest/namespace_routes.py). In a PATCH body a
field left out keeps its value; ``rate_limit: null`` removes the namespace's limit, and
``null`` for a lifecycle default removes it (durations: seconds or strings such as "90d")."""

from __future__ import annotations

from msgspec import UNSET, Struct, UnsetType


class CreateNamespaceRequest(Struct, forbid_unknown_fields=True):
    name: str
    description: str | None = None
    allow_legacy_rsa_2048: bool = False
    rate_limit: float | None = None           # requests per second, all callers together
    rotation_period: int | str | None = None  # default for keys created here (>= 1 hour)
    originator_usage_period: int | str | None = None  # crypto-period defaults of its keys
    recipient_usage_period: int | str | None = None


class UpdateNamespaceRequest(Struct, forbid_unknown_fields=True):
    description: str | None = None
    allow_legacy_rsa_2048: bool | None = None
    rate_limit: float | UnsetType | None = UNSET
    rotation_period: int | str | UnsetType | None = UNSET
    originator_usage_period: int | str | UnsetType | None = UNSET
    recipient_usage_period: int | str | UnsetType | None = UNSET


class NamespaceOut(Struct, omit_defaults=True):
    name: str
    description: str
    allow_legacy_rsa_2048: bool
    rate_limit: float | None
    created_by: str
    created_at: str
    keys: int | None = None                   # how many keys it holds (show, create, update)
    rotation_period: int | None = None        # seconds; None (left out): none
    originator_usage_period: int | None = None  # seconds; None: SP 800-57 Table 1's
    recipient_usage_period: int | None = None


class NamespaceList(Struct):
    namespaces: list[NamespaceOut]


class NamespaceDeleted(Struct):
    name: str
    deleted_at: str
    keys_destroyed: int                       # keys crypto-erased by this deletion
    versions_destroyed: int                   # key versions whose material was erased
