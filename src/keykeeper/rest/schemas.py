"""msgspec structs of the REST API: they validate requests and produce the OpenAPI schema.

Binary fields are ``bytes``: msgspec reads and writes them as standard base64.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import UNSET, Meta, Struct, UnsetType

Name = Annotated[str, Meta(pattern=r"^[A-Za-z0-9._-]{1,128}$")]
Context = dict[str, str]
Version = Annotated[int, Meta(ge=1)]


class Problem(Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str = ""
    approval_id: str | None = None    # approval_required: the pending request to approve
    retry_after: int | None = None    # resource_exhausted: seconds (also Retry-After)


class CreateKeyRequest(Struct, forbid_unknown_fields=True):
    name: str
    namespace: str | None = None
    purpose: str | None = None
    algorithm: str | None = None
    rotation_period: int | str | None = None
    labels: dict[str, str] | None = None
    description: str | None = None
    exportable: bool = False
    protection: str | None = None
    # Lifecycle (service/key_lifecycle.py): an activation date in the future makes the key
    # pre-active (KMIP 2.1 §4.1); durations are seconds or strings such as "730d".
    activation_date: datetime | None = None
    deactivation_date: datetime | None = None
    usage_limit: int | None = None            # protect operations per version
    usage_rotate_fraction: float | None = None
    originator_usage_period: int | str | None = None
    recipient_usage_period: int | str | None = None
    # "external": no version until key material is imported (docs/import-export.md).
    origin: str | None = None


class UpdateKeyRequest(Struct, forbid_unknown_fields=True):
    """A field left out keeps its value; ``null`` clears a lifecycle field (back to the
    namespace's or the algorithm's default)."""

    description: str | None = None
    labels: dict[str, str] | None = None
    rotation_period: int | str | UnsetType | None = UNSET
    next_rotation_time: datetime | UnsetType | None = UNSET
    min_encryption_version: int | UnsetType | None = UNSET
    min_decryption_version: int | UnsetType | None = UNSET
    usage_limit: int | UnsetType | None = UNSET
    usage_rotate_fraction: float | UnsetType | None = UNSET
    originator_usage_period: int | str | UnsetType | None = UNSET
    recipient_usage_period: int | str | UnsetType | None = UNSET
    activation_date: datetime | UnsetType | None = UNSET
    deactivation_date: datetime | UnsetType | None = UNSET


class TrimRequest(Struct, forbid_unknown_fields=True):
    min_available_version: Version    # versions below it are crypto-erased


class KeyOut(Struct):
    id: str
    name: str
    namespace: str
    purpose: str
    algorithm: str
    state: str
    primary_version: int
    description: str
    labels: dict[str, str]
    exportable: bool
    protection: str
    rotation_period: int | None
    next_rotation_time: str | None
    created_at: str
    updated_at: str
    destruction_time: str | None
    compromised_at: str | None
    compromise_reason: str | None
    activation_date: str | None
    deactivation_date: str | None
    min_encryption_version: int           # 0: only the primary version protects
    min_decryption_version: int           # 0: every version processes
    usage_limit: int | None               # effective: the key's, else the algorithm's
    usage_rotate_fraction: float          # effective (default 0.9)
    rotation_threshold: int | None        # protect operations that start a rotation
    originator_usage_period: int          # seconds, effective (key, namespace, SP 800-57)
    recipient_usage_period: int           # seconds, effective
    rotation_reason: str | None           # why a rotation is due early ("usage")
    origin: str = "generated"             # "external": material imported (issue 6 §3)


class KeyList(Struct, omit_defaults=True):
    keys: list[KeyOut]
    next_page_token: str | None = None


class VersionOut(Struct):
    version: int
    state: str
    created_at: str
    destroyed_at: str | None
    protect_count: int = 0                     # protect operations reserved on it
    originator_usage_end: str | None = None    # may protect until then
    recipient_usage_end: str | None = None     # may process until then
    deactivated_at: str | None = None
    compromised_at: str | None = None
    compromise_reason: str | None = None
    in_hsm: bool = False                       # material is a PKCS#11 token object
    public_only: bool = False                  # imported public key alone: verify/encrypt


class VersionList(Struct):
    versions: list[VersionOut]


class Empty(Struct, forbid_unknown_fields=True):
    pass


class ScheduleDestructionRequest(Struct, forbid_unknown_fields=True):
    pending_days: int | None = None


class CompromiseRequest(Struct, forbid_unknown_fields=True):
    reason: str
    # When the compromise happened (RFC 3339, not in the future; KMIP Compromise
    # Occurrence Date); default: now.
    compromise_time: datetime | None = None


# Batch structs are created by the thousand per request: ``gc=False`` keeps them out of
# the cyclic garbage collector (they hold only str, bytes, int and flat str->str dicts,
# so they can never be part of a reference cycle).
# Batch items carry base64 as text, decoded by pybase64 in the handler: msgspec's own
# base64 decoder costs about as much per KiB as AES-GCM itself (bench/profile_app.py).
Base64Text = Annotated[str, Meta(extra_json_schema={"contentEncoding": "base64"})]


class EncryptItem(Struct, forbid_unknown_fields=True, gc=False):
    plaintext: Base64Text
    context: Context | None = None
    key_version: Version | None = None


class EncryptRequest(Struct, forbid_unknown_fields=True):
    plaintext: bytes | None = None
    context: Context | None = None
    key_version: Version | None = None
    items: list[EncryptItem] | None = None


class ItemError(Struct, gc=False):
    code: str
    detail: str


class EncryptResult(Struct, omit_defaults=True, gc=False):
    ciphertext: str | None = None
    key_version: int | None = None
    error: ItemError | None = None


class EncryptBatchResponse(Struct):
    items: list[EncryptResult]


class DecryptItem(Struct, forbid_unknown_fields=True, gc=False):
    ciphertext: str
    context: Context | None = None
    allow_compromised: bool = False  # recovery: process with a compromised key (audited)


class DecryptRequest(Struct, forbid_unknown_fields=True):
    ciphertext: str | None = None
    context: Context | None = None
    items: list[DecryptItem] | None = None
    allow_compromised: bool = False  # for every item: recovery with a compromised key


class DecryptResult(Struct, omit_defaults=True, gc=False):
    plaintext: bytes | None = None
    key_version: int | None = None
    error: ItemError | None = None


class DecryptBatchResponse(Struct):
    items: list[DecryptResult]


class RewrapRequest(Struct, forbid_unknown_fields=True):
    ciphertext: str
    context: Context | None = None
    allow_compromised: bool = False  # recovery: process with a compromised key (audited)
    destination_key: str | None = None  # re-encrypt under this key instead (needs encrypt)


class Ciphertext(Struct):
    ciphertext: str
    key_version: int


class DataKeyRequest(Struct, forbid_unknown_fields=True):
    key_spec: str | None = None
    context: Context | None = None
    include_plaintext: bool = True


class DataKeyResponse(Struct, omit_defaults=True):
    ciphertext: str
    key_version: int
    plaintext: bytes | None = None


class SignRequest(Struct, forbid_unknown_fields=True):
    message: bytes | None = None
    digest: bytes | None = None
    signature_format: str | None = None
    key_version: Version | None = None


class SignResponse(Struct):
    signature: bytes
    key_version: int


class VerifyRequest(Struct, forbid_unknown_fields=True):
    signature: bytes
    message: bytes | None = None
    digest: bytes | None = None
    signature_format: str | None = None
    key_version: Version | None = None
    allow_compromised: bool = False  # recovery: process with a compromised key (audited)


class Valid(Struct):
    valid: bool
    key_version: int


class MacRequest(Struct, forbid_unknown_fields=True):
    message: bytes
    key_version: Version | None = None


class MacResponse(Struct):
    mac: bytes
    key_version: int


class VerifyMacRequest(Struct, forbid_unknown_fields=True):
    message: bytes
    mac: bytes
    key_version: Version | None = None
    allow_compromised: bool = False  # recovery: process with a compromised key (audited)


class PublicKeyResponse(Struct):
    public_key: str
    key_version: int
    algorithm: str


class EncapsulateRequest(Struct, forbid_unknown_fields=True):
    key_version: Version | None = None


class EncapsulateResponse(Struct):
    shared_secret: bytes
    ciphertext: bytes
    key_version: int


class DecapsulateRequest(Struct, forbid_unknown_fields=True):
    ciphertext: bytes
    key_version: Version | None = None
    allow_compromised: bool = False  # recovery: process with a compromised key (audited)


class DecapsulateResponse(Struct):
    shared_secret: bytes
    key_version: int


class RandomRequest(Struct, forbid_unknown_fields=True):
    length: Annotated[int, Meta(ge=1, le=65536)]


class RandomResponse(Struct, rename={"data": "bytes"}):
    data: bytes
