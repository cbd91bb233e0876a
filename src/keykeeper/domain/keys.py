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
    # Protect operations reserved on this version by every node (an upper bound of those
    # done; exact once idle nodes have returned unused reservations).
    protect_count: int = 0
    deactivated_at: datetime | None = None   # end of its originator usage period, or by hand
    compromised_at: datetime | None = None   # when the compromise happened (may be earlier)
    compromise_reason: str | None = None
    # A version imported as a public key alone (issue 6 §3): no private material, so it
    # verifies or encrypts only (service/lookup.py hands out a public-only handle).
    public_only: bool = False
    # An HSM-protected version: its material is a token object (custody/hsm/).
    in_hsm: bool = False


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
    # Lifecycle (domain/lifecycle.py): KMIP Activation and Deactivation Date; Vault's
    # minimum versions (0: every version decrypts / only the primary encrypts); the usage
    # limit per version (None: the algorithm's default) and the fraction of it at which a
    # rotation is started (None: 0.9); crypto-period overrides in seconds (None: the
    # namespace's, then SP 800-57's); why a rotation is due early ("usage"), if it is.
    activation_date: datetime | None = None
    deactivation_date: datetime | None = None
    min_encryption_version: int = 0
    min_decryption_version: int = 0
    usage_limit: int | None = None
    usage_rotate_fraction: float | None = None
    originator_usage_period: int | None = None
    recipient_usage_period: int | None = None
    rotation_reason: str | None = None
    # "generated" (material made here) or "external" (imported, issue 6 §3): an external
    # key starts with no version (primary_version 0, pre-active) until material arrives.
    origin: str = "generated"

    @property
    def ref(self) -> str:
        return f"{self.namespace}:{self.name}"

    def version(self, number: int) -> KeyVersion | None:
        for v in self.versions:
            if v.version == number:
                return v
        return None
