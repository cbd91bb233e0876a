"""The managed key and its versions, as frozen domain objects.

A :class:`Key` has one purpose and one algorithm (cryptographic segmentation,
NIST SP 800-57 Part 1 §5.2) and ordered :class:`KeyVersion` s; the *primary
version* serves new protect operations, older versions still process until they
are disabled or destroyed. Rows live in store/; these objects never hold key
material, only metadata.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from keykeeper.crypto.registry import Purpose
from keykeeper.domain.states import KeyState, VersionState

__all__ = ["Key", "KeyVersion", "new_key_id"]


def new_key_id() -> str:
    """A fresh key id: ``k-`` and 32 hex digits (128 random bits)."""
    return "k-" + secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class KeyVersion:
    key_id: str
    version: int
    state: VersionState
    created_at: datetime
    destroyed_at: datetime | None = None
    public_key_pem: str | None = None


@dataclass(frozen=True, slots=True)
class Key:
    id: str
    namespace: str
    name: str
    purpose: Purpose
    algorithm: str
    state: KeyState
    primary_version: int
    created_at: datetime
    updated_at: datetime
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    exportable: bool = False
    protection: str = "software"
    rotation_period: int | None = None
    next_rotation_time: datetime | None = None
    destruction_time: datetime | None = None
    compromised_at: datetime | None = None
    compromise_reason: str | None = None
    created_by: str = ""
    versions: tuple[KeyVersion, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}:{self.name}"

    def version(self, number: int) -> KeyVersion | None:
        for v in self.versions:
            if v.version == number:
                return v
        return None
