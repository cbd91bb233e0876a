"""The seal record in the store: which provider seals the root, and its parameters.

Kept as one configuration value ``seal`` = ``{"type": "passphrase" | "shamir" |
"pkcs11", ...}``; a store initialised before seal types existed keeps its record under
``seal.passphrase`` and is read as a passphrase seal. Nothing secret is in a record:
Argon2id parameters and the wrapped root key (passphrase), the wrapped root key and the
share counts (shamir), the HSM key's ``CKA_ID`` and the wrapped root secret (pkcs11).
"""

from __future__ import annotations

from typing import Any

from keykeeper.custody.passphrase import SealedRoot
from keykeeper.custody.seal_pkcs11 import SealedPkcs11
from keykeeper.custody.seal_shamir import SealedShamir
from keykeeper.errors import Internal, InvalidArgument

__all__ = ["SEAL_TYPES", "SealRecord", "check_seal_type", "record_from_json", "record_to_json",
           "seal_type"]

SEAL_TYPES = ("passphrase", "shamir", "pkcs11")
SealRecord = SealedRoot | SealedShamir | SealedPkcs11


def check_seal_type(value: str) -> str:
    """``value`` if it names a seal provider, else InvalidArgument."""
    if value not in SEAL_TYPES:
        raise InvalidArgument(f"seal must be one of {', '.join(SEAL_TYPES)}, got {value!r}")
    return value


def seal_type(record: SealRecord) -> str:
    if isinstance(record, SealedRoot):
        return "passphrase"
    if isinstance(record, SealedShamir):
        return "shamir"
    return "pkcs11"


def record_to_json(record: SealRecord) -> dict[str, Any]:
    return {"type": seal_type(record), **record.to_json()}


def record_from_json(data: dict[str, Any]) -> SealRecord:
    kind = data.get("type", "passphrase")
    if kind == "passphrase":
        return SealedRoot.from_json(data)
    if kind == "shamir":
        return SealedShamir.from_json(data)
    if kind == "pkcs11":
        return SealedPkcs11.from_json(data)
    raise Internal("the stored seal record names an unknown seal type")
